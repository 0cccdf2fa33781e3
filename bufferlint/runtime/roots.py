"""The torchtitan recipe's root for a layer. The trainer calls only the root's
`init_weights`, so a layer built alone as the root has its own hook called, which the real
cascade may never do: a layer is judged inside the outermost class of its package that
holds one (its file and the files beside it), as the trainer would build it."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Iterator

import torch
from torch import nn

from bufferlint.runtime.build import Construction, constructions

# A holder built from its defaults must stay small enough to build eagerly twice.
MAX_ELEMENTS = 1 << 22


def ways(cls: type) -> tuple[list[Construction], list[str], str]:
    """The constructions to judge `cls` by, notes on them, and the submodule judged ("":
    `cls` is built alone, as the root)."""
    own, notes = constructions(cls, None, "")
    found: list[tuple[int, Construction, str]] = []
    for candidate in _candidates(cls):
        held = _holding(candidate, cls)
        if held is not None:
            found.append(held)
    if not found:
        package = cls.__module__.rpartition(".")[0] or cls.__module__
        note = (
            f"judged alone as the root: no class of {package} that holds a "
            f"{cls.__name__} could be built; the trainer calls the root's init_weights only"
        )
        return own, [*notes, note], ""
    _, way, part = max(found, key=lambda f: f[0])
    return [way], notes, part


def _holding(candidate: type, cls: type) -> tuple[int, Construction, str] | None:
    """How many modules a build of `candidate` holds, the build, and where its first `cls`
    is; None when no construction of it builds one."""
    for way in constructions(candidate, None, "")[0]:
        try:
            with torch.device("meta"):
                model = way.make()
        except Exception:  # a guess at the arguments that does not build
            continue
        if not isinstance(model, nn.Module):
            continue
        size = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
        part = next((q for q, m in model.named_modules() if q and type(m) is cls), None)
        if part is None or size > MAX_ELEMENTS:
            continue
        text = f"{candidate.__name__} ({way.description}), holding {cls.__name__} as {part}"
        return sum(1 for _ in model.modules()), Construction(text, way.make, way.kind), part
    return None


def _candidates(cls: type) -> Iterator[type]:
    """The module classes of `cls`'s file and of the files beside it, but `cls` and its
    subclasses."""
    for module in _modules(cls):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                value.__module__ == module.__name__
                and issubclass(value, nn.Module)
                and not issubclass(value, cls)
                and not inspect.isabstract(value)
            ):
                yield value


def _modules(cls: type) -> Iterator[object]:
    own = importlib.import_module(cls.__module__)
    yield own
    path = getattr(own, "__file__", None)
    package = cls.__module__.rpartition(".")[0]
    if not path or not package:
        return
    for info in pkgutil.iter_modules([os.path.dirname(path)]):
        name = f"{package}.{info.name}"
        if name == cls.__module__:
            continue
        try:
            yield importlib.import_module(name)
        except Exception:  # a sibling that does not import here holds nothing we can build
            continue
