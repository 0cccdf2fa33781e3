"""Positive cases for `--fix` beyond fixtures/static, in the same marker style: each
class marked `# expect:` is fixed, then proved at runtime by tests/test_fix.py."""

import math

import torch
from torch import nn


class Rotary(nn.Module):  # expect: BL001 inv_freq
    """Constructor arguments stored unchanged on self: the rebuild reads them back."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim = dim
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()


class Sinusoidal(nn.Module):  # expect: BL002 pe
    """Locals filled through slices, then rebound: every statement is replayed."""

    def __init__(self, d_model: int, max_len: int = 16) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0)
        self.register_buffer("pe", pe)


class CachedRotary(nn.Module):  # expect: BL002 inv_freq cos_cached sin_cached
    """A helper with arguments registers the cache: it is called again."""

    def __init__(self, dim: int, max_position: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.max_position = max_position
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.dim, 2).float() / self.dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._set_cache(max_position, device=self.inv_freq.device, dtype=torch.float32)

    def _set_cache(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> None:
        t = torch.arange(seq_len, device=device, dtype=self.inv_freq.dtype)
        emb = torch.outer(t, self.inv_freq).repeat(1, 2)
        self.register_buffer("cos_cached", emb.cos().to(dtype), persistent=False)
        self.register_buffer("sin_cached", emb.sin().to(dtype), persistent=False)


class Gated(nn.Module):  # expect: BL002 mask
    """Built under a configuration condition: the rebuild keeps it."""

    def __init__(self, n: int, causal: bool = True) -> None:
        super().__init__()
        self.causal = causal
        if causal:
            self.register_buffer("mask", torch.tril(torch.ones(n, n, dtype=torch.bool)))
        else:
            self.register_buffer("mask", torch.ones(n, n, dtype=torch.bool))


class PairTable(nn.Module):  # expect: BL002 cos sin
    """Allocated empty, then assigned through a tuple from a pure helper."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("cos", torch.empty(n))
        self.register_buffer("sin", torch.empty(n))
        self.cos, self.sin = self._tables()

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.linspace(0, math.pi, self.n)
        return angles.cos(), angles.sin()


class InitCallsHook(nn.Module):  # expect: BL001 scale
    """Construction runs the hook before `scale` exists: the rebuild waits for it."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n))
        self.reset_parameters()
        self.register_buffer("scale", torch.full((n,), 2.0))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)


class CausalMask(nn.Module):  # expect: BL002 mask
    """BL002's own example (bufferlint/rules.py)."""

    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)
