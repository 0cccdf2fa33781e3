"""The rules, one unit a module: every module of this package but `base` and `registry`
defines one rule class and registers it with `@register`. Everything else (the selectors,
the fixer's and the runtime's lists, the rule pages, SARIF's rule table, `bufferlint rule`)
reads `RULES`, so adding a rule touches its own file alone.
"""

from __future__ import annotations

import importlib
import pkgutil

from bufferlint.rules.base import ClassRule, DirectiveRule, Flag, JudgedClass, Rule, describe
from bufferlint.rules.registry import (
    RULES,
    class_rules,
    directive_rule,
    fixable,
    register,
    runtime_checked,
    unregister,
)


def __getattr__(code: str) -> Rule:
    """`from bufferlint.rules import BL001`: a registered rule by its code."""
    if code in RULES:
        return RULES[code]
    raise AttributeError(f"module {__name__!r} has no attribute {code!r}")


for _unit in pkgutil.iter_modules(__path__):
    if _unit.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_unit.name}")

__all__ = [
    "RULES",
    "ClassRule",
    "DirectiveRule",
    "Flag",
    "JudgedClass",
    "Rule",
    "class_rules",
    "describe",
    "directive_rule",
    "fixable",
    "register",
    "runtime_checked",
    "unregister",
]
