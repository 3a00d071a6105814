"""Shared test setup: one torch thread.

The fast suite works on tiny tensors, where a second OpenMP thread buys little, and on a
loaded 2-core machine two threads per process make small ops 100x slower (threads spin-wait
for a core). One thread keeps the suite's time steady wherever it runs.
"""

import torch

torch.set_num_threads(1)
