"""Forward processes ``x_t = alpha(t) x_0 + sigma(t) eps``: each supplies its coefficients, the base
class derives the rest (drift, diffusion, log-SNR, the inversions sigma <-> t, the two-time transition)."""

from .base import Process, Transition
from .continuous import EDM, OU, VE, VP, Linear, SubVP
from .discrete import DDPMSchedule
from .forward import simulate_forward

__all__ = ["Process", "Transition", "VP", "SubVP", "VE", "EDM", "OU", "Linear", "DDPMSchedule", "simulate_forward"]
