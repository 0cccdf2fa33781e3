"""Materialization conventions: how a training stack gives a meta-built model real tensors.

A finding is only true if it is judged by the way the user's stack runs. Each convention
says which methods rebuild a module's tensors, who calls them on which modules, which
parameter receives the device, which torch layers already define them, where a fix goes
and which runtime recipe reproduces the stack's path. The analysis, the fixer and the
runtime ask the convention; none of them names a hook.
"""

from __future__ import annotations

from collections.abc import Sequence

from bufferlint.conventions.base import Convention
from bufferlint.conventions.reset_parameters import RESET_PARAMETERS, reset_methods

DEFAULT = RESET_PARAMETERS
# Conventions a user can name; `reset-methods` is made from the hooks they list.
NAMES = (RESET_PARAMETERS.name, "reset-methods")


class UnknownConvention(ValueError):
    """A convention name or combination the user got wrong; the message is one line."""


def select(name: str | None, hooks: Sequence[str] | None) -> Convention:
    """The convention a run uses: by name, or `reset-methods` when only hooks are given."""
    if name is None:
        return reset_methods(tuple(hooks)) if hooks else DEFAULT
    if name == RESET_PARAMETERS.name:
        if hooks:
            raise UnknownConvention(
                f"`reset-methods` names the hooks of the `reset-methods` convention, "
                f"not of `{name}`"
            )
        return RESET_PARAMETERS
    if name == "reset-methods":
        if not hooks:
            raise UnknownConvention(
                "the `reset-methods` convention needs `reset-methods` (`--reset-method NAME`)"
            )
        return reset_methods(tuple(hooks))
    raise UnknownConvention(f"unknown convention `{name}`; known conventions: {', '.join(NAMES)}")


def named(name: str, hooks: tuple[str, ...]) -> Convention:
    """The convention a finding names (`Finding.convention`, with its hooks)."""
    if name == RESET_PARAMETERS.name or not name:
        return reset_methods(hooks) if hooks else DEFAULT
    return select(name, hooks)


__all__ = [
    "DEFAULT",
    "NAMES",
    "RESET_PARAMETERS",
    "Convention",
    "UnknownConvention",
    "named",
    "select",
]
