import torch

# one thread per test process: CI runs `pytest -n 2` on 2 cores, and oversubscribed torch
# threads make small tensor operations many times slower
torch.set_num_threads(1)
