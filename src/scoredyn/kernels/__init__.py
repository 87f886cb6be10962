"""Fast paths for the particle dynamics: fused Triton kernels (CUDA, or the interpreter on the
CPU) and compiled torch, each checked against the plain reference path."""
