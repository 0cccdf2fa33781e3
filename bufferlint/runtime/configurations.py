"""The configurations `--fix --runtime` verifies a fix on: every way `constructions` gives,
then the first built-in one (defaults, else synthesized arguments) with each boolean flipped
and each `None`-able argument given the other value, since a fix that rebuilds a buffer
construction registers only under a flag breaks exactly the configuration without it.

Worker side: imports torch through bufferlint.runtime.build.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from bufferlint.runtime import build
from bufferlint.runtime.build import Construction

# Flipped configurations beyond `constructions`' own, at most: each costs one more check.
MAX_FLIPPED = 8


def every(cls: type, ways: list[Construction]) -> list[Construction]:
    """`ways`, then the flipped variants of the first built-in one, without repeats."""
    base_way = next((w for w in ways if w.kind in ("defaults", "synthesized")), None)
    if base_way is None:  # a factory: the user's own configuration, and only that
        return list(ways)
    params = build._parameters(cls)
    base: dict[str, Any] = {}
    if base_way.kind == "synthesized":
        try:
            base = build.synthesize(cls, params, small_defaults=True)
        except build.Unsynthesizable:
            return list(ways)
    seen = {w.description for w in ways}
    out = list(ways)
    for kwargs in _flipped(cls, params, base)[:MAX_FLIPPED]:
        description = "args {" + ", ".join(f"{k}={build._describe(v)}" for k, v in kwargs.items())
        description += "}"
        if description not in seen:
            seen.add(description)
            out.append(Construction(description, _maker(cls, kwargs), "synthesized"))
    return out


def _maker(cls: type, kwargs: dict[str, Any]) -> Any:
    return lambda: cls(**copy.deepcopy(kwargs))


def _flipped(
    cls: type, params: list[inspect.Parameter], base: dict[str, Any]
) -> list[dict[str, Any]]:
    """`base` with one argument changed: a boolean negated, a `None` default given a small
    value, an Optional argument given `None`."""
    hints = build._hints(cls.__init__)
    out = []
    for p in params:
        current = base.get(p.name, p.default)
        annotation, optional = build._unwrap_optional(
            build._from_text(hints.get(p.name, p.annotation))
        )
        if isinstance(current, bool):
            out.append({**base, p.name: not current})
        elif current is None and p.default is not p.empty:
            try:
                value = build._value(p.name, annotation, build._MISSING, True)
            except build.Unsynthesizable:
                continue
            if value is not None and value is not build._KEEP:
                out.append({**base, p.name: value})
        elif optional and current is not None and current is not p.empty:
            out.append({**base, p.name: None})
    return out
