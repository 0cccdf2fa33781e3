"""The materialization paths of real training stacks, and reseeded, recorded hook calls.

Each recipe turns a model built on the meta device into one on `device` exactly the way its
stack does it, so a buffer that comes out wrong here comes out wrong there.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from bufferlint.conventions import RESET_PARAMETERS, TIMM, TORCHTUNE


def module_seed(seed: int, qualname: str, hook: str) -> int:
    """A seed per (module, hook), stable across processes (unlike `hash`), so random
    initialization does not depend on the order a recipe visits modules in."""
    return (seed * 1_000_003 + zlib.crc32(f"{qualname}:{hook}".encode())) % 2**63


class HookRecorder:
    """Wraps every hook of every module so each call is reseeded from the module's name and
    the top-level calls are recorded, to be replayed in the same order on an eager build."""

    def __init__(self, model: nn.Module, hooks: Sequence[str], seed: int) -> None:
        self.seed = seed
        self.calls: list[tuple[str, str]] = []
        self.modules = dict(model.named_modules())
        self._depth = 0
        for qualname, module in self.modules.items():
            for hook in hooks:
                bound = getattr(module, hook, None)
                if callable(bound):
                    # An instance attribute shadows the method, hasattr() still works.
                    module.__dict__[hook] = self._wrap(qualname, hook, bound)

    def _wrap(self, qualname: str, hook: str, bound: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(bound)
        def reseeded(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0:
                self.calls.append((qualname, hook))
            self._depth += 1
            torch.manual_seed(module_seed(self.seed, qualname, hook))
            try:
                return bound(*args, **kwargs)
            finally:
                self._depth -= 1

        return reseeded

    def replay(self, calls: Sequence[tuple[str, str]]) -> None:
        """Call the same hooks, in the same order, on this (eager) model."""
        with torch.no_grad():
            for qualname, hook in calls:
                getattr(self.modules[qualname], hook)()


def _owns_tensors(module: nn.Module) -> bool:
    direct = itertools.chain(module.parameters(recurse=False), module.buffers(recurse=False))
    return next(direct, None) is not None


def _label(qualname: str, module: nn.Module) -> str:
    return f"{qualname or '<root>'} ({type(module).__name__})"


def _breadth_first(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """FSDP1's visiting order (`_get_modules_to_materialize`): breadth-first, each module once."""
    queue: deque[tuple[str, nn.Module]] = deque([("", model)])
    visited = {id(model)}
    while queue:
        qualname, module = queue.popleft()
        yield qualname, module
        for name, child in module.named_children():
            if id(child) not in visited:
                visited.add(id(child))
                queue.append((f"{qualname}.{name}" if qualname else name, child))


def _call_hooks(module: nn.Module, hooks: Sequence[str]) -> bool:
    called = False
    for hook in hooks:
        method = getattr(module, hook, None)
        if callable(method):
            method()
            called = True
    return called


def _fsdp(model: nn.Module, hooks: Sequence[str], device: torch.device) -> list[str]:
    """torch FSDP1's default path (`_materialize_meta_module`), with no `hasattr` guard. Where
    FSDP1 would stop with AttributeError we note it and go on, to still judge the buffers."""
    notes = []
    with torch.no_grad():
        for qualname, module in _breadth_first(model):
            if not _owns_tensors(module):
                continue
            module.to_empty(device=device, recurse=False)
            if not _call_hooks(module, hooks):
                notes.append(
                    f"{_label(qualname, module)} owns tensors but has no {' or '.join(hooks)}(): "
                    "real FSDP1 raises AttributeError here; its tensors were left as to_empty "
                    "made them"
                )
    return notes


def _lightning(model: nn.Module, hooks: Sequence[str], device: torch.device) -> list[str]:
    """Lightning's own function, called as is: it raises TypeError for a module without
    the hook, and that becomes the error verdict the user would hit."""
    from lightning.fabric.utilities.init import _materialize_meta_tensors

    _materialize_meta_tensors(model, device)
    called = RESET_PARAMETERS.hooks
    if tuple(hooks) != called:
        return [f"lightning only calls {called[0]}(), not {', '.join(hooks)}"]
    return []


def _root_then_hooks(model: nn.Module, hooks: Sequence[str], device: torch.device) -> list[str]:
    """`to_empty` on the root, then every hook on every module that has one (the loop users,
    torchtitan-style trainers and FSDP2 code write themselves)."""
    model.to_empty(device=device)
    notes = []
    with torch.no_grad():
        for qualname, module in model.named_modules():
            if not _call_hooks(module, hooks) and _owns_tensors(module):
                notes.append(
                    f"{_label(qualname, module)} owns tensors but has no {' or '.join(hooks)}(): "
                    "they stay as to_empty made them"
                )
    return notes


def _torchtitan(model: nn.Module, device: torch.device) -> list[str]:
    """torchtitan's trainer: `to_empty`, then under no_grad the root's `init_weights` once,
    given `buffer_device=None` as the trainer does without CPU offload; the root's code calls
    its layers'. The later protocol's root without `init_weights` gets what `init_states`
    does: `_init_self_buffers(buffer_device=None)` on every module."""
    model.to_empty(device=device)
    with torch.no_grad():
        for hook in ("init_weights", "init_states"):
            method = getattr(model, hook, None)
            if callable(method):
                _call_with_device(method, "buffer_device", None)
                return []
        called = False
        for _, module in model.named_modules():
            method = getattr(module, "_init_self_buffers", None)
            if callable(method):
                _call_with_device(method, "buffer_device", None)
                called = True
    return [] if called else [f"{_label('', model)} has no init_weights(): nothing was called"]


def _call_with_device(method: Callable[..., Any], parameter: str, device: Any) -> None:
    """`method(parameter=device)` where it takes that parameter, else `method()`."""
    try:
        accepted = inspect.signature(method).parameters
    except (TypeError, ValueError):
        accepted = {}
    method(**({parameter: device} if parameter in accepted else {}))


def _timm(model: nn.Module, device: torch.device) -> list[str]:
    """A timm user's path: `to_empty`, `reset_parameters()` where defined, then what
    `timm.models.reinit_non_persistent_buffers` does (models/_manipulate.py)."""
    model.to_empty(device=device)
    with torch.no_grad():
        for hook in (RESET_PARAMETERS.hooks[0], TIMM.hooks[0]):
            for _, module in model.named_modules():
                _call_hooks(module, (hook,))
    return []


def _torchtune(
    model: nn.Module, device: torch.device, state: dict[str, torch.Tensor] | None
) -> list[str]:
    """torchtune's recipes: no `to_empty`; `rope_init()` on every module that has one under
    the device, then the checkpoint (here the eager build's state) loaded with
    `assign=True`. A buffer neither gives memory stays on meta."""
    with torch.device(device), torch.no_grad():
        for _, module in model.named_modules():
            _call_hooks(module, TORCHTUNE.hooks)
    if state is not None:
        model.load_state_dict(state, strict=True, assign=True)
    return []


def materialize(
    recipe: str,
    model: nn.Module,
    hooks: Sequence[str],
    device: torch.device,
    mesh: Callable[[], Any],
    state: dict[str, torch.Tensor] | None = None,
) -> list[str]:
    """Materialize `model` (built on meta) on `device` by `recipe`; returns notes for the
    report. `mesh` gives the device mesh for fsdp2 (created only when asked for); `state`,
    the checkpoint the torchtune recipe loads. The transformers, torchtitan, timm and
    torchtune recipes ignore `hooks`: they call what their stack calls."""
    if recipe == "torchtitan":
        return _torchtitan(model, device)
    if recipe == "timm":
        return _timm(model, device)
    if recipe == "torchtune":
        return _torchtune(model, device, state)
    if recipe == "fsdp":
        return _fsdp(model, hooks, device)
    if recipe == "lightning":
        return _lightning(model, hooks, device)
    if recipe == "transformers":
        from bufferlint.runtime import hf

        return hf.materialize(model, device)
    if recipe == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        fully_shard(model, mesh=mesh())
        with warnings.catch_warnings():
            # Parameters are judged by nobody here, so partial CPU support does not matter.
            warnings.filterwarnings("ignore", "DTensor random operators may not have complete")
            return _root_then_hooks(model, hooks, device)
    return _root_then_hooks(model, hooks, device)
