"""Runtime confirmation: build each flagged class on the meta device, materialize it the way a
training stack does, and check whether its buffers come out right.

This module is imported by the CLI even when torch is absent, so it imports nothing heavy: the
user's code and torch only ever run in child processes started by `bufferlint.runtime.launch`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bufferlint import conventions

# Recipes that materialize any nn.Module (torchtitan's, timm's and torchtune's paths are
# reproduced with torch alone: none of those packages is needed).
RECIPES = ("fsdp", "fsdp2", "lightning", "torch", "torchtitan", "timm", "torchtune")
TRANSFORMERS = "transformers"
# Recipes that materialize a framework's whole model (a transformers PreTrainedModel, built
# from a tiny config; a class inside one is judged inside the model that holds it).
MODEL_RECIPES = (TRANSFORMERS,)
ALL_RECIPES = (*RECIPES, *MODEL_RECIPES)
INSTALL_HINT = 'pip install "bufferlint[runtime]"'
# The extra that brings each package, for the install hint.
_EXTRAS = {"transformers": "transformers"}
# Packages a recipe needs besides torch.
RECIPE_PACKAGES = {"lightning": ("lightning",), TRANSFORMERS: ("transformers",)}


class RuntimeUnavailable(RuntimeError):
    """torch (or lightning or transformers, for their recipes) is not installed."""


@dataclass(frozen=True)
class RuntimeTarget:
    """One class the static analysis flagged, and where to import it from."""

    path: str
    module: str
    import_root: str
    class_name: str
    buffers: tuple[str, ...]
    hooks: tuple[str, ...] = conventions.RESET_PARAMETERS.hooks
    convention: str = conventions.RESET_PARAMETERS.name
    # Also run the hooks with the default device away from the module's (the CPU stand-in
    # for a second device: bufferlint.runtime.standin).
    stand_in: bool = False

    @property
    def key(self) -> str:
        """The `[tool.bufferlint.runtime.factories]` key naming this class."""
        return f"{self.module}:{self.class_name}"


@dataclass(frozen=True)
class RuntimeSettings:
    """How to run the check; `jobs` caps parallel worker processes (None: one per core)."""

    recipe: str = "auto"
    devices: int = 1
    timeout: float = 60.0
    factories: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    jobs: int | None = None


def resolve_recipe(recipe: str, convention: str, hooks: Sequence[str]) -> str:
    """`auto` means the recipe that reproduces the convention's own path."""
    if recipe != "auto":
        return recipe
    return conventions.named(convention, tuple(hooks)).recipe


def unavailable(*missing: str) -> str:
    """The one line saying which packages are missing and how to install them."""
    extras = sorted({_EXTRAS.get(name, "runtime") for name in missing})
    hint = f'pip install "bufferlint[{",".join(extras)}]"'
    return (
        f"runtime mode needs {' and '.join(missing)}, which "
        f"{'is' if len(missing) == 1 else 'are'} not installed: {hint}"
    )


def require(*packages: str) -> None:
    """Raise RuntimeUnavailable unless every package can be imported (without importing it)."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeUnavailable(unavailable(*missing))


def packages_for(recipes: Sequence[str] | set[str]) -> tuple[str, ...]:
    """torch, and what the recipes need on top of it."""
    extra = {p for recipe in recipes for p in RECIPE_PACKAGES.get(recipe, ())}
    return ("torch", *sorted(extra))


def validate(settings: RuntimeSettings) -> None:
    """Reject settings a user could have mistyped, with a message rather than a traceback."""
    if settings.recipe not in (*ALL_RECIPES, "auto"):
        raise ValueError(
            f"unknown runtime recipe {settings.recipe!r}; "
            f"choose one of auto, {', '.join(ALL_RECIPES)}"
        )
    if settings.devices < 1:
        raise ValueError(f"devices must be at least 1, got {settings.devices}")
    if settings.timeout <= 0:
        raise ValueError(f"timeout must be positive, got {settings.timeout}")
    if settings.jobs is not None and settings.jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {settings.jobs}")


def check(targets: Sequence[RuntimeTarget], settings: RuntimeSettings) -> list[dict[str, Any]]:
    """Confirm or refute each target by really materializing it; one JSON-ready dict per target,
    in order. Raises RuntimeUnavailable when torch is missing and ValueError for bad settings;
    everything that goes wrong with one class (import, hang, crash) becomes that class's
    `error` verdict instead."""
    validate(settings)
    recipes = {resolve_recipe(settings.recipe, t.convention, t.hooks) for t in targets}
    require(*packages_for(recipes))
    from bufferlint.runtime.launch import run_jobs, target_job

    return run_jobs([target_job(t, settings) for t in targets], settings)


__all__ = [
    "ALL_RECIPES",
    "MODEL_RECIPES",
    "RECIPES",
    "TRANSFORMERS",
    "RuntimeSettings",
    "RuntimeTarget",
    "RuntimeUnavailable",
    "check",
    "packages_for",
    "require",
    "resolve_recipe",
    "unavailable",
    "validate",
]
