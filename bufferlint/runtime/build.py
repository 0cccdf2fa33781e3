"""Ways to construct a small instance of a class: the user's factory, the class's own defaults,
or arguments synthesized from parameter names, annotations and defaults.

Every way is a zero-argument `make()` so the same construction can be repeated on the meta
device and eagerly; arguments are rebuilt on each call, as a module may mutate its config.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import importlib
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Construction:
    """One way to build the module: `kind` is "factory", "defaults" or "synthesized"."""

    description: str
    make: Callable[[], nn.Module]
    kind: str

    @property
    def explicit(self) -> bool:
        """A factory or the class's defaults is what the user's code does anyway, so its
        exceptions are the user's errors; synthesized arguments are our guess, and their
        exceptions only mean the guess was wrong."""
        return self.kind != "synthesized"


# Arguments changed, at most, one at a time (each variant costs one more build).
MAX_FLIPS = 8


class Unsynthesizable(Exception):
    """No sensible small value exists for some parameter."""


def load(spec: str) -> Any:
    """Import "pkg.mod:attr.sub" and return the attribute; errors say which part failed."""
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"{spec!r} is not of the form 'pkg.module:name'")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{module_name} has no attribute {qualname!r}") from None
    return obj


def constructions(
    cls: type, factory: Callable[[], nn.Module] | None, label: str
) -> tuple[list[Construction], list[str]]:
    """The ways to try, in order, and notes on the ways that could not even be attempted."""
    if factory is not None:
        return [Construction(f"factory {label}", factory, "factory")], []
    params = _parameters(cls)
    ways: list[Construction] = []
    notes: list[str] = []
    if all(p.default is not p.empty for p in params):
        ways.append(Construction("defaults", cls, "defaults"))
    seen: set[str] = set()
    for small_defaults in (True, False):
        try:
            kwargs = synthesize(cls, params, small_defaults)
        except Unsynthesizable as exc:
            notes.append(f"synthesized args: {exc}")
            break
        if not kwargs:
            continue  # identical to calling with defaults
        way = synthesized(cls, kwargs)
        if way.description not in seen:
            seen.add(way.description)
            ways.append(way)
    ways += _flipped(cls, params, ways)
    return ways, notes


def _flipped(
    cls: type, params: list[inspect.Parameter], ways: list[Construction]
) -> list[Construction]:
    """The small build again with one argument changed at a time: a buffer that only some
    configurations register (`r_learnable=False`, `standardize=True`) is judged in one that
    does, and `--fix --runtime` checks a fix in the configurations that lack it."""
    if not ways:
        return []
    try:
        base = synthesize(cls, params, True)
    except Unsynthesizable:
        return []
    seen = {way.description for way in ways}
    found = []
    for kwargs in variants(cls, params, base)[:MAX_FLIPS]:
        way = synthesized(cls, kwargs)
        if way.description not in seen:
            seen.add(way.description)
            found.append(way)
    return found


def variants(
    cls: type, params: list[inspect.Parameter], base: dict[str, Any]
) -> list[dict[str, Any]]:
    """`base` with one argument changed: a boolean negated, a `None` default given a small
    value, an Optional argument given `None`."""
    hints = _hints(cls.__init__)
    out = []
    for p in params:
        current = base.get(p.name, p.default)
        annotation, optional = _unwrap_optional(_from_text(hints.get(p.name, p.annotation)))
        if isinstance(current, bool):
            out.append({**base, p.name: not current})
        elif current is None and p.default is not p.empty:
            try:
                value = _value(p.name, annotation, _MISSING, True)
            except Unsynthesizable:
                continue
            if value is not None and value is not _KEEP:
                out.append({**base, p.name: value})
        elif optional and current is not None and current is not p.empty:
            out.append({**base, p.name: None})
    return out


def synthesized(cls: type, kwargs: dict[str, Any]) -> Construction:
    shown = ", ".join(f"{k}={_describe(v)}" for k, v in kwargs.items())
    return Construction(f"synthesized args {{{shown}}}", _maker(cls, kwargs), "synthesized")


def _maker(cls: type, kwargs: dict[str, Any]) -> Callable[[], nn.Module]:
    return lambda: cls(**copy.deepcopy(kwargs))


def _parameters(cls: type) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p for p in signature.parameters.values() if p.kind not in skip]


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations; unresolvable ones stay strings and are matched by text."""
    try:
        return typing.get_type_hints(obj)
    except Exception:
        return dict(getattr(obj, "__annotations__", {}))


def synthesize(cls: type, params: list[inspect.Parameter], small_defaults: bool) -> dict[str, Any]:
    """Keyword arguments for a tiny instance. With `small_defaults`, size-like parameters that
    have big defaults (dim=4096) are shrunk too; otherwise only required ones are filled."""
    hints = _hints(cls.__init__)
    kwargs = {}
    for p in params:
        annotation = hints.get(p.name, p.annotation)
        has_default = p.default is not p.empty
        if has_default and not small_defaults:
            continue
        value = _value(p.name, annotation, p.default if has_default else _MISSING, small_defaults)
        if value is not _KEEP:
            kwargs[p.name] = value
    return kwargs


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MISSING = _Marker("<missing>")  # the parameter has no default
_KEEP = _Marker("<keep>")  # leave the parameter at its default

_INT_NAMES: list[tuple[str, int]] = [
    (r"(^|_)(idx|index|rank|id|layer_id|seed|offset|start)$", 0),
    (r"head_(dim|size)|(rope|rotary)_(dim|n_elem)|n_elem", 4),
    (r"(^|_)(n_?heads?|num_(attention_|kv_|key_value_)?heads|heads|n_kv_heads)$", 2),
    (r"(query|kv)_groups|num_groups|n_groups", 2),
    (r"seq_?len|block_size|max_len|context|n_ctx|positions|max_position|window|cache_size", 16),
    (r"(^|_)(n_?layers?|num_(hidden_)?layers|depth|n_blocks|num_blocks)$", 1),
    (r"vocab|num_embeddings|num_classes|n_classes|num_tokens", 32),
    (r"batch", 2),
    (r"dim|size|embd|embed|hidden|features|channels|width|d_model|units|intermediate|ff", 8),
]
_FLOAT_BASE = re.compile(r"base|theta")


def _int_for(name: str) -> int | None:
    lowered = name.lower()
    for pattern, value in _INT_NAMES:
        if re.search(pattern, lowered):
            return value
    return None


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    if origin is typing.Annotated:
        return typing.get_args(annotation)[0], False
    return annotation, False


_STRING_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _from_text(annotation: Any) -> Any:
    """Map the simple string annotations `get_type_hints` could not resolve ("int | None")."""
    if not isinstance(annotation, str):
        return annotation
    text = annotation.replace(" ", "").replace("|None", "").replace("None|", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional[") : -1]
    return _STRING_TYPES.get(text, annotation)


def _value(name: str, annotation: Any, default: Any, small_defaults: bool) -> Any:
    """A small value for one parameter, `_KEEP` to leave its default, or Unsynthesizable."""
    annotation, optional = _unwrap_optional(_from_text(annotation))
    has_default = default is not _MISSING
    untyped = annotation is inspect.Parameter.empty
    if annotation is bool or isinstance(default, bool):
        return _KEEP if has_default else False
    if annotation is int or (
        untyped and (isinstance(default, int) or (not has_default and _int_for(name)))
    ):
        return _int_value(name, default, small_defaults)
    if annotation is float or (untyped and isinstance(default, float)):
        return _KEEP if has_default else (10000.0 if _FLOAT_BASE.search(name.lower()) else 1e-5)
    if has_default:
        return _KEEP
    return _required_value(name, annotation, optional)


def _int_value(name: str, default: Any, small_defaults: bool) -> Any:
    has_default = default is not _MISSING
    if _FLOAT_BASE.search(name.lower()):  # rope_base: int = 10000 is not a size
        return _KEEP if has_default else 10000
    small = _int_for(name)
    if small is not None and (not has_default or (small_defaults and default is not None)):
        return small
    return _KEEP if has_default else 4


def _required_value(name: str, annotation: Any, optional: bool) -> Any:
    """A value for a parameter without a default that is not a plain number."""
    if optional:
        return None
    if annotation is torch.dtype:
        return torch.float32
    if annotation is torch.device:
        return None  # let the surrounding torch.device(...) context decide
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return small_dataclass(annotation)
    if annotation is inspect.Parameter.empty:
        raise Unsynthesizable(f"no annotation or default for {name!r}")
    kind = getattr(annotation, "__name__", None) or str(annotation)
    raise Unsynthesizable(f"cannot make a {kind} for {name!r}")


def small_dataclass(cls: type) -> Any:
    """A config dataclass built from its defaults with size-like fields shrunk, passed through
    the constructor so `__post_init__` derives the rest (head_size = n_embd // n_head) from
    small, mutually consistent values (8 divides by 2 and 4)."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        value = _value(f.name, hints.get(f.name, f.type), default, small_defaults=True)
        if value is not _KEEP:
            kwargs[f.name] = value
    return cls(**kwargs)


def _describe(value: Any) -> str:
    """Compact text for the `built_with` line: dataclasses show only what we changed."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = [
            f"{f.name}={getattr(value, f.name)!r}"
            for f in dataclasses.fields(value)
            if f.init and _is_changed(f, getattr(value, f.name))
        ]
        return f"{type(value).__name__}({', '.join(changed)})"
    return repr(value)


def _is_changed(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value != f.default)
    return f.default_factory is dataclasses.MISSING
