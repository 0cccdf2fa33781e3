"""Materialization conventions: how a training stack gives a meta-built model real tensors.

A finding is only true if it is judged by the way the user's stack runs. Each convention
says which methods rebuild a module's tensors, who calls them on which modules, which
parameter receives the device, which torch layers already define them, where a fix goes
and which runtime recipe reproduces the stack's path. The analysis, the fixer and the
runtime ask the convention; none of them names a hook. `auto`, the default, chooses one
per class (bufferlint.choice).
"""

from __future__ import annotations

from collections.abc import Sequence

from bufferlint.conventions.base import DISPATCHER, Convention
from bufferlint.conventions.reset_parameters import RESET_PARAMETERS, reset_methods
from bufferlint.conventions.timm import TIMM
from bufferlint.conventions.torchtitan import TORCHTITAN
from bufferlint.conventions.torchtune import TORCHTUNE
from bufferlint.conventions.transformers import TRANSFORMERS

# `auto`: no hooks of its own; the class model picks one of `CHOSEN` per class.
AUTO = Convention(name="auto", hooks=(), recipe="auto", summary="chosen per class")
DEFAULT = AUTO
FALLBACK = RESET_PARAMETERS  # what `auto` picks when nothing shows another stack
# The conventions `auto` can pick besides the fallback, in the order it tries them.
CHOSEN = (TRANSFORMERS, TORCHTITAN, TIMM, TORCHTUNE)
# Conventions a user can name; `reset-methods` is made from the hooks they list.
NAMES = (AUTO.name, RESET_PARAMETERS.name, "reset-methods", *(c.name for c in CHOSEN))
_FIXED = {c.name: c for c in (RESET_PARAMETERS, *CHOSEN)}
# What the extractor reads twice, as dispatchers, and the helpers they write with.
DISPATCHING = tuple(c for c in CHOSEN if c.caller == DISPATCHER)
DISPATCHERS = frozenset(c.hooks[0] for c in DISPATCHING)
DISPATCHER_INIT_MODULES = tuple(m for c in DISPATCHING for m in c.init_modules)


def dispatching_template(path: str) -> bool:
    """Whether a file is a template of a dispatching stack: its models judge nothing."""
    return any(convention.is_template(path) for convention in DISPATCHING)


class UnknownConvention(ValueError):
    """A convention name or combination the user got wrong; the message is one line."""


def select(name: str | None, hooks: Sequence[str] | None) -> Convention:
    """The convention a run uses: by name, or `reset-methods` when only hooks are given."""
    if name is None:
        return reset_methods(tuple(hooks)) if hooks else DEFAULT
    if name == "reset-methods":
        if not hooks:
            raise UnknownConvention(
                "the `reset-methods` convention needs `reset-methods` (`--reset-method NAME`)"
            )
        return reset_methods(tuple(hooks))
    if name == AUTO.name or name in _FIXED:
        if hooks:
            raise UnknownConvention(
                f"`reset-methods` names the hooks of the `reset-methods` convention, "
                f"not of `{name}`"
            )
        return _FIXED.get(name, AUTO)
    raise UnknownConvention(f"unknown convention `{name}`; known conventions: {', '.join(NAMES)}")


def named(name: str, hooks: tuple[str, ...]) -> Convention:
    """The convention a finding names (`Finding.convention`, with its hooks)."""
    if name == RESET_PARAMETERS.name or not name:
        return reset_methods(hooks) if hooks else RESET_PARAMETERS
    if name in _FIXED:
        return _FIXED[name]
    return select(name, hooks)


__all__ = [
    "AUTO",
    "CHOSEN",
    "DEFAULT",
    "DISPATCHERS",
    "DISPATCHER_INIT_MODULES",
    "FALLBACK",
    "NAMES",
    "RESET_PARAMETERS",
    "TIMM",
    "TORCHTITAN",
    "TORCHTUNE",
    "TRANSFORMERS",
    "Convention",
    "UnknownConvention",
    "dispatching_template",
    "named",
    "select",
]
