import os

# Triton kernels run on CPU tensors through Triton's interpreter; the flag is read when triton is first
# imported (torch.compile imports it too), so it is set before anything else
os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

# one thread per test process: CI runs `pytest -n 2` on 2 cores, and oversubscribed torch
# threads make small tensor operations many times slower
torch.set_num_threads(1)
