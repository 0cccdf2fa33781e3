"""The bridge from `bufferlint --runtime` to `check`: settings from the config file and the
command line, one target per finding of a rule the runtime can check, and the verdicts
attached to the findings.

Imports no torch, like the rest of the parent side: the CLI imports this only with --runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from bufferlint.conventions import Convention
from bufferlint.findings import Finding
from bufferlint.rules import RULES, runtime_checked
from bufferlint.runtime import (
    RuntimeSettings,
    RuntimeTarget,
    check,
    packages_for,
    require,
    resolve_recipe,
    validate,
)


def settings_for(
    configured: Mapping[str, Any], flags: Mapping[str, Any], convention: Convention
) -> RuntimeSettings:
    """Defaults, then `[tool.bufferlint.runtime]`, then the flags given (None: not given).

    Checks up front that torch (and lightning or transformers, if the recipe needs it) is
    installed, so a
    missing install fails before minutes of analysis rather than after. Raises ValueError
    for bad values and RuntimeUnavailable for a missing package.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    settings = dataclasses.replace(RuntimeSettings(), **{**configured, **given})
    validate(settings)
    require(*packages_for({resolve_recipe(settings.recipe, convention.name, convention.hooks)}))
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
        convention=finding.convention,
        stand_in=finding.code is not None and RULES[finding.code].device_stand_in,
    )


def confirm_findings(findings: Sequence[Finding], settings: RuntimeSettings) -> None:
    """Run the class of every finding the runtime can judge and set its `runtime` to the
    result, in place."""
    checked = runtime_checked()
    chosen = [f for f in findings if f.code in checked]
    results = check([target_for(f) for f in chosen], settings)
    for finding, result in zip(chosen, results, strict=True):
        finding.runtime = result
