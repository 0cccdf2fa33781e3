"""The bridge from `bufferlint --runtime` to `check`: settings from the config file and the
command line, one target per BL001/BL002 finding, and the verdicts attached to the findings.

Imports no torch, like the rest of the parent side: the CLI imports this only with --runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from bufferlint.findings import Finding
from bufferlint.runtime import (
    RuntimeSettings,
    RuntimeTarget,
    check,
    require,
    resolve_recipe,
    validate,
)

# The rules whose findings name a class and buffers that can be built and judged.
CHECKED = frozenset({"BL001", "BL002"})


def settings_for(
    configured: Mapping[str, Any], flags: Mapping[str, Any], hooks: Sequence[str]
) -> RuntimeSettings:
    """Defaults, then `[tool.bufferlint.runtime]`, then the flags given (None: not given).

    Checks up front that torch (and lightning, if the recipe needs it) is installed, so a
    missing install fails before minutes of analysis rather than after. Raises ValueError
    for bad values and RuntimeUnavailable for a missing package.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    settings = dataclasses.replace(RuntimeSettings(), **{**configured, **given})
    validate(settings)
    needs_lightning = resolve_recipe(settings.recipe, hooks) == "lightning"
    require("torch", *(["lightning"] if needs_lightning else []))
    return settings


def target_for(finding: Finding) -> RuntimeTarget:
    """The class a finding names, importable the way the static analysis resolved it."""
    return RuntimeTarget(
        path=finding.path,
        module=finding.module,
        import_root=finding.import_root,
        class_name=finding.class_name,
        buffers=tuple(finding.buffer_names),
        hooks=tuple(finding.hooks),
    )


def confirm_findings(findings: Sequence[Finding], settings: RuntimeSettings) -> None:
    """Run every BL001/BL002 finding's class and set its `runtime` to the result, in place."""
    chosen = [f for f in findings if f.code in CHECKED]
    results = check([target_for(f) for f in chosen], settings)
    for finding, result in zip(chosen, results, strict=True):
        finding.runtime = result
