"""The shapes of real code that `--fix` handles (issue 18), written from scratch: each
class marked `# expect:` is fixed, then proved at runtime by tests/test_fix.py, in
every configuration that CONFIGURATIONS there lists for it."""

from dataclasses import dataclass

import torch
from torch import nn


class OptionalTable(nn.Module):  # expect: BL002 table
    """Registered only when a flag is set: the rebuild runs under the same test."""

    def __init__(self, n: int, use_table: bool = True) -> None:
        super().__init__()
        self.n = n
        self.use_table = use_table
        if use_table:
            self.register_buffer("table", torch.arange(n).float() * 0.5)


class ShiftedMask(nn.Module):  # expect: BL002 attn_mask
    """Registered as `None` on one branch, built in a loop on the other: the branch is
    replayed whole, and the copy waits for a buffer that exists."""

    def __init__(self, size: int, shift: int = 1) -> None:
        super().__init__()
        self.size = size
        self.shift = shift
        if self.shift > 0:
            mask = torch.zeros(size, size)
            for i in range(size):
                mask[i, : i + 1] = 1.0
            mask = mask * -100.0
        else:
            mask = None
        self.register_buffer("attn_mask", mask, persistent=False)


class MaybeScale(nn.Module):  # expect: BL002 scale
    """`value if flag else None`: the copy runs only where the buffer is a tensor."""

    def __init__(self, n: int, scaled: bool = True) -> None:
        super().__init__()
        self.n = n
        scale = torch.linspace(0.5, 1.0, n)
        self.register_buffer("scale", scale if scaled else None)


class Placed(nn.Module):  # expect: BL002 steps radius
    """`device=` and `dtype=` arguments: the rebuilt buffer's own are used instead."""

    def __init__(self, n: int, r: float = 2.0, device=None, dtype=None) -> None:
        super().__init__()
        self.n = n
        self.r = r
        self.register_buffer("steps", torch.arange(n, device=device, dtype=dtype))
        self.register_buffer("radius", torch.tensor(r, device=device, dtype=dtype))


@dataclass
class TinyConfig:
    max_positions: int = 6
    n_head: int = 2
    width: int = 8


class Positions(nn.Module):  # expect: BL002 position_ids head_scale
    """Sizes read from a config that is not stored: the buffer's own shape for one, the
    attribute `__init__` derived from it (`self.n_head`) for the other."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        ids = torch.arange(config.max_positions).expand((1, -1))
        self.register_buffer("position_ids", ids, persistent=False)
        self.register_buffer("head_scale", torch.arange(config.n_head) + 1.0)


class Branchy(nn.Module):  # expect: BL002 freqs
    """A local set on both branches of an `if`: the branch construction took is replayed."""

    def __init__(self, dim: int, linear: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.linear = linear
        if linear:
            steps = torch.arange(dim)
            base = steps.float() / dim
        else:
            steps = torch.arange(dim).float()
            base = torch.exp(steps * -0.5)
        self.register_buffer("freqs", base * 2.0)


class WholeInit(nn.Module):  # expect: BL002 freqs_cis
    """The buffer's last writer is a helper that also re-draws the weights: the fix
    replays only the statement that builds the buffer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("freqs_cis", self._precompute(), persistent=False)
        self.init_weights()

    def _precompute(self) -> torch.Tensor:
        return torch.outer(torch.arange(4.0), torch.arange(self.dim) * 0.25)

    def init_weights(self) -> None:
        nn.init.normal_(self.proj.weight)
        self.freqs_cis = self._precompute()


class BiasTable(nn.Module):  # expect: BL002 index
    """Parameters that `__init__` initialized directly: the new hook initializes them
    again the same way (a random initializer makes that fix unsafe)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.table = nn.Parameter(torch.zeros(n, 2))
        nn.init.trunc_normal_(self.table, std=0.02)
        self.gain = nn.Parameter(torch.ones(n))
        self.register_buffer("index", torch.arange(n))


class EarlyReturn(nn.Module):  # expect: BL002 cache scale
    """Registered only after an early `return` that a flag decides: rebuilt only where
    construction registered it."""

    def __init__(self, n: int, use_scale: bool = True) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("cache", torch.zeros(n), persistent=False)
        if not use_scale:
            return
        self.register_buffer("scale", torch.linspace(0.1, 1.0, n), persistent=False)


class Reassigned(nn.Module):  # expect: BL002 rates
    """An argument assigned again before the buffer reads it (`rates = f(rates)`): the fix
    stores the argument before that assignment, and the hook replays from there."""

    def __init__(self, n: int, rates: list[float] | None = None) -> None:
        super().__init__()
        self.n = n
        rates = torch.tensor(rates if rates is not None else [1.0 / (i + 1) for i in range(n)])
        rates = rates.unsqueeze(0) * 2.0
        self.register_buffer("rates", rates, persistent=False)


class ReadOnlyBranch(nn.Module):  # expect: BL002 scale
    """A branch before the buffer reads the size the buffer needs but sets nothing it
    needs (it reads an argument the hook cannot know): the rebuild does not replay it."""

    def __init__(self, n: int, table: list[float] | None = None) -> None:
        super().__init__()
        self.n = n
        if table is not None:
            self.width = len(table) + n
        else:
            self.width = n
        self.register_buffer("scale", torch.arange(n) / n, persistent=False)


class FactoryKwargs(nn.Module):  # expect: BL002 floor
    """torch's `**factory_kwargs` idiom (the device and dtype in one dict): the value is
    copied into the buffer's own tensor, which is already placed and typed."""

    def __init__(self, floor: float = 1e-3, factory_kwargs: dict | None = None) -> None:
        factory_kwargs = torch.nn.factory_kwargs(factory_kwargs)
        super().__init__()
        self.least = floor
        self.register_buffer("floor", torch.tensor([floor], **factory_kwargs))


class Rescaled(nn.Module):  # expect: BL002 inv_freq
    """An argument rescaled in place (`base *= f`) before the buffer reads it: the hook
    starts from the argument, stored, as `base = self.base * (f)`."""

    def __init__(self, dim: int, base: float = 100.0, factor: float = 2.0) -> None:
        super().__init__()
        self.dim = dim
        base *= factor ** (dim / (dim - 2))
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, dim, 2).float() / dim))


class LocalMask(nn.Module):  # expect: BL002 mask
    """A local that may be `None`, registered later: the copy runs only where the buffer
    is a tensor, from the branch that is not `None`, so no flag needs storing."""

    def __init__(self, n: int = 4, causal: bool = True) -> None:
        super().__init__()
        self.n = n
        mask = torch.tril(torch.ones(n, n)) * 3.0 if causal else None
        self.register_buffer("mask", mask, persistent=False)


class NoneOtherwise(nn.Module):  # expect: BL002 ramp
    """`self.ramp = None` on the other branch of its registration: nothing to copy there."""

    def __init__(self, n: int = 4, ramped: bool = True) -> None:
        super().__init__()
        self.n = n
        self.ramped = ramped
        if ramped:
            self.register_buffer("ramp", torch.arange(n) * 0.25)
        else:
            self.ramp = None


class DroppedLater(nn.Module):  # expect: BL002 ramp
    """Registered, then set to `None` when a flag is off: the copy waits for a tensor."""

    def __init__(self, n: int = 4, keep: bool = True) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("ramp", torch.arange(n) * 0.75)
        if not keep:
            self.ramp = None


class SharedLocal(nn.Module):  # expect: BL002 maybe always
    """A local that one buffer reads only when it is not `None` and another always reads:
    its definition stays outside the first buffer's guard."""

    def __init__(self, n: int = 4, flag: bool = True) -> None:
        super().__init__()
        self.n = n
        steps = torch.arange(n) * 1.5
        self.register_buffer("maybe", steps if flag else None)
        self.register_buffer("always", steps + 1.0)


class ScalarNames(nn.Module):  # expect: BL002 ids
    """Arguments named like modules (`block_size`, `weight_scale`) but typed as numbers:
    the unsafe fix stores them, as it stores any number."""

    def __init__(self, block_size: int = 4, weight_scale: float | None = 0.5) -> None:
        super().__init__()
        self.register_buffer("ids", torch.arange(block_size) * (weight_scale or 1.0) + 1.0)


class OptionalStats(nn.Module):  # expect: BL002 shift
    """Registered only with a flag (`None` otherwise) and filled by a helper that takes an
    argument, under a test on a string argument named like a weight: the helper is called
    again, and its result copied back only into a buffer that exists."""

    def __init__(self, n: int = 4, stats: bool = True, weight_init: str = "") -> None:
        super().__init__()
        self.n = n
        if stats:
            self.register_buffer("shift", torch.empty(n))
        else:
            self.shift = None
        if weight_init != "skip":
            self.init_stats(0.5)

    def init_stats(self, value: float) -> None:
        if self.shift is not None:
            nn.init.constant_(self.shift, value)
