"""No `import torch`: the fix adds it for `torch.no_grad()`."""

from torch import arange, nn


class Bare(nn.Module):  # expect: BL002 ids
    def __init__(self):
        super().__init__()
        self.register_buffer("ids", arange(6))
