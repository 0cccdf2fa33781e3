"""torch under another name: the fix uses that name."""

import torch as th
from torch import nn


class Aliased(nn.Module):  # expect: BL002 steps
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("steps", th.arange(n))
