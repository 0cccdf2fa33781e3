"""The registry the rule units add themselves to, and the views the rest of bufferlint reads."""

from __future__ import annotations

from typing import TypeVar

from bufferlint.rules.base import ClassRule, DirectiveRule, Rule

RULES: dict[str, Rule] = {}  # by code, sorted
R = TypeVar("R", bound=type[Rule])


def register(cls: R) -> R:
    """Adds a rule class to the registry (one instance)."""
    if cls.code in RULES:
        raise ValueError(f"rule code {cls.code} is registered twice")
    RULES[cls.code] = cls()
    ordered = sorted(RULES.items())
    RULES.clear()
    RULES.update(ordered)
    return cls


def unregister(code: str) -> None:
    """Removes a rule (for tests that register their own)."""
    RULES.pop(code, None)


def class_rules(select: frozenset[str]) -> list[ClassRule]:
    return [r for code, r in RULES.items() if code in select and isinstance(r, ClassRule)]


def directive_rule() -> DirectiveRule | None:
    """The rule that reports directives which suppress nothing."""
    return next((r for r in RULES.values() if isinstance(r, DirectiveRule)), None)


def fixable() -> frozenset[str]:
    return frozenset(code for code, rule in RULES.items() if rule.fixable)


def runtime_checked() -> frozenset[str]:
    return frozenset(code for code, rule in RULES.items() if rule.runtime_checked)
