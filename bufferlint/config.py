"""Settings from `[tool.bufferlint]` in pyproject.toml (or `--config FILE`), checked strictly.

A mistyped key or rule code is an error, never ignored: a linter that silently checks less
than its user believes is worse than one that refuses to start. Precedence, as in ruff:
built-in defaults, then the config file, then command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bufferlint import conventions
from bufferlint.engine import Settings
from bufferlint.rules import RULES
from bufferlint.sources import DEFAULT_EXCLUDES

TABLE = "[tool.bufferlint]"
KEYS = (
    "select",
    "extend-select",
    "ignore",
    "exclude",
    "extend-exclude",
    "respect-gitignore",
    "per-file-ignores",
    "convention",
    "per-file-conventions",
    "reset-methods",
    "runtime",
)
RUNTIME_KEYS = ("recipe", "devices", "timeout", "factories")
SELECTOR = re.compile(r"BL\d{0,3}")
FACTORY = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


class ConfigError(Exception):
    """A setting the user got wrong; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class RuntimeConfig:
    """`[tool.bufferlint.runtime]`, holding only what the file sets (None: not set), so that
    command-line flags and the runtime's own defaults can fill in the rest."""

    recipe: str | None = None
    devices: int | None = None
    timeout: float | None = None
    factories: dict[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The keys that were set: `dataclasses.replace(RuntimeSettings(), **values())`."""
        out = {
            name: getattr(self, name)
            for name in ("recipe", "devices", "timeout")
            if getattr(self, name) is not None
        }
        if self.factories:
            out["factories"] = dict(self.factories)
        return out


@dataclass(frozen=True)
class Config:
    """One parsed `[tool.bufferlint]` table; rule selectors are validated but not expanded."""

    path: str | None = None  # the file read; None when no file was found
    root: str = ""  # the folder relative globs are anchored to
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    convention: str | None = None
    reset_methods: tuple[str, ...] | None = None
    per_file_conventions: tuple[tuple[str, str], ...] = ()  # (glob, convention name)
    runtime: RuntimeConfig = RuntimeConfig()


@dataclass(frozen=True)
class Overrides:
    """What the command line sets; None or empty means "not given, keep the config's"."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    force_exclude: bool = False
    convention: str | None = None
    reset_methods: tuple[str, ...] | None = None


# -- finding and reading -------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):  # here: a run without a config file never imports it
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{_display(path)}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_display(path)}: invalid TOML: {exc}") from None


def _bufferlint_table(data: dict[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("bufferlint") if isinstance(tool, dict) else None


def find(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.bufferlint]` table;
    pyproject files without one are passed over, as ruff passes over those without
    `[tool.ruff]`."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file() and _bufferlint_table(_read_toml(path)) is not None:
            return path
    return None


def load(path: Path, root: str | None = None) -> Config:
    """Parses one file: `[tool.bufferlint]` of a pyproject.toml, the top-level table of any
    other TOML file (a dedicated `bufferlint.toml`). `root` anchors relative globs; it
    defaults to the file's folder."""
    data = _read_toml(path)
    shown = _display(path)
    if path.name == "pyproject.toml":
        table = _bufferlint_table(data)
        table = {} if table is None else table
        where = f"{shown}: {TABLE}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        runtime_where = f"{shown}: [tool.bufferlint.runtime]"
    else:
        table, where, runtime_where = data, f"{shown}:", f"{shown}: [runtime]"
    config = _parse(table, where, str(path), root or str(path.parent))
    if "runtime" in table:
        config = dataclasses.replace(config, runtime=_runtime(table["runtime"], runtime_where))
    return config


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(path.absolute())
    return str(path) if relative.startswith("..") else relative


def discover(paths: Sequence[str], explicit: str | None = None) -> Config:
    """The config for one run: `--config FILE` if given (globs then anchor at the current
    directory, as in ruff), else the nearest one above the common folder of `paths`."""
    cwd = os.getcwd()
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return load(path, root=cwd)
    folders = [os.path.abspath(p) for p in paths] or [cwd]
    start = Path(os.path.commonpath(folders))
    found = find(start)
    return load(found) if found is not None else Config(root=cwd)


# -- validation ----------------------------------------------------------------------


def _unknown(key: str, known: Sequence[str], where: str) -> ConfigError:
    close = _close(key, known)
    hint = f" (did you mean `{close[0]}`?)" if close else f"; known keys: {', '.join(known)}"
    return ConfigError(f"{where} unknown key `{key}`{hint}")


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} `{key}` must be a list of strings, got {value!r}")
    return tuple(value)


def check_selectors(selectors: Sequence[str], where: str) -> tuple[str, ...]:
    """Rejects anything that selects no rule: `ALL`, `BL`, `BL0`, `BL00` and full codes
    are valid. Codes are case-sensitive, as in ruff."""
    for selector in selectors:
        if selector == "ALL":
            continue
        if not SELECTOR.fullmatch(selector) or not any(c.startswith(selector) for c in RULES):
            close = _close(selector.upper(), [*RULES, "ALL"])
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ConfigError(
                f"{where} unknown rule selector `{selector}`{hint}; known rules: {', '.join(RULES)}"
            )
    return tuple(selectors)


def _parse(table: dict[str, Any], where: str, path: str, root: str) -> Config:
    for key in table:
        if key not in KEYS:
            raise _unknown(key, KEYS, where)
    values: dict[str, Any] = {"path": path, "root": root}
    for key in ("select", "extend-select", "ignore"):
        if key in table:
            values[key.replace("-", "_")] = check_selectors(
                _strings(table[key], key, where), f"{where} `{key}`:"
            )
    for key in ("exclude", "extend-exclude"):
        if key in table:
            values[key.replace("-", "_")] = _strings(table[key], key, where)
    if "respect-gitignore" in table:
        if not isinstance(table["respect-gitignore"], bool):
            raise ConfigError(f"{where} `respect-gitignore` must be true or false")
        values["respect_gitignore"] = table["respect-gitignore"]
    if "per-file-ignores" in table:
        values["per_file_ignores"] = _per_file_ignores(table["per-file-ignores"], where)
    if "convention" in table:
        if not isinstance(table["convention"], str):
            raise ConfigError(f"{where} `convention` must be a string, got {table['convention']!r}")
        values["convention"] = table["convention"]
    if "reset-methods" in table:
        values["reset_methods"] = check_reset_methods(
            _strings(table["reset-methods"], "reset-methods", where), f"{where} `reset-methods`"
        )
    try:
        conventions.select(values.get("convention"), values.get("reset_methods"))
    except conventions.UnknownConvention as exc:
        raise ConfigError(f"{where} {exc}") from None
    if "per-file-conventions" in table:
        values["per_file_conventions"] = _per_file_conventions(
            table["per-file-conventions"], where, values.get("reset_methods")
        )
    return Config(**values)


def _per_file_conventions(
    value: Any, where: str, hooks: tuple[str, ...] | None
) -> tuple[tuple[str, str], ...]:
    """Globs as `per-file-ignores`, each naming one convention (`reset-methods` takes the
    table's `reset-methods`)."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where} `per-file-conventions` must be a table: {{"glob" = "timm"}}')
    for pattern, name in value.items():
        here = f"{where} `per-file-conventions` `{pattern}`:"
        if not isinstance(name, str):
            raise ConfigError(f"{here} must be a convention name, got {name!r}")
        try:
            conventions.select(name, hooks if name == "reset-methods" else None)
        except conventions.UnknownConvention as exc:
            raise ConfigError(f"{here} {exc}") from None
    return tuple(value.items())


def _per_file_ignores(value: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where} `per-file-ignores` must be a table: {{"glob" = ["BL001"]}}')
    return tuple(
        (
            pattern,
            check_selectors(
                _strings(codes, f"per-file-ignores.{pattern}", where),
                f"{where} `per-file-ignores` `{pattern}`:",
            ),
        )
        for pattern, codes in value.items()
    )


def check_reset_methods(methods: Sequence[str], where: str) -> tuple[str, ...]:
    """Hook names must be identifiers, and at least one is needed."""
    if not methods:
        raise ConfigError(f"{where} needs at least one method name")
    for name in methods:
        if not name.isidentifier():
            raise ConfigError(f"{where}: `{name}` is not a method name")
    return tuple(methods)


def _runtime(value: Any, where: str) -> RuntimeConfig:
    from bufferlint.runtime import RuntimeSettings, validate  # light: imports no torch

    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    for key in value:
        if key not in RUNTIME_KEYS:
            raise _unknown(key, RUNTIME_KEYS, where)
    recipe, devices, timeout = (value.get(k) for k in ("recipe", "devices", "timeout"))
    if recipe is not None and not isinstance(recipe, str):
        raise ConfigError(f"{where} `recipe` must be a string, got {recipe!r}")
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int)):
        raise ConfigError(f"{where} `devices` must be an integer, got {devices!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise ConfigError(f"{where} `timeout` must be a number of seconds, got {timeout!r}")
    factories = value.get("factories", {})
    if not isinstance(factories, dict):
        raise ConfigError(f'{where} `factories` must be a table: {{"pkg.mod:Class" = ...}}')
    for key, target in factories.items():
        for text in (key, target):
            if not isinstance(text, str) or not FACTORY.fullmatch(text):
                raise ConfigError(
                    f'{where} `factories`: `{text}` is not of the form "package.module:Name"'
                )
    runtime = RuntimeConfig(
        recipe, devices, None if timeout is None else float(timeout), dict(factories)
    )
    try:
        validate(dataclasses.replace(RuntimeSettings(), **runtime.values()))
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None
    return runtime


# -- resolution ----------------------------------------------------------------------


def expand(selector: str) -> frozenset[str]:
    """The rule codes a (validated) selector stands for."""
    return frozenset(RULES if selector == "ALL" else (c for c in RULES if c.startswith(selector)))


def _specificity(selector: str) -> int:
    return 0 if selector == "ALL" else len(selector)


def select_rules(
    layers: Sequence[tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]],
) -> frozenset[str]:
    """Applies (select, extend-select, ignore) layers in order, config before command line.

    As in ruff: `select` replaces what earlier layers enabled, and within a layer the most
    specific selector decides a rule (`select = ["BL"]` with `ignore = ["BL001"]` drops
    BL001; `ignore = ["BL"]` with `extend-select = ["BL001"]` keeps it); on a tie, ignore
    wins.
    """
    enabled = set(RULES)
    for select, extend_select, ignore in layers:
        for code in RULES:
            best: tuple[int, int] | None = None  # (specificity, 1 ignore / 0 select)
            for selector in (*(select or ()), *extend_select):
                if code in expand(selector):
                    best = max(best or (-1, 0), (_specificity(selector), 0))
            for selector in ignore:
                if code in expand(selector):
                    best = max(best or (-1, 0), (_specificity(selector), 1))
            if best is not None:
                (enabled.discard if best[1] else enabled.add)(code)
            elif select is not None:
                enabled.discard(code)
    return frozenset(enabled)


def resolve(config: Config, overrides: Overrides) -> Settings:
    """Engine settings: defaults, then the config, then the command line."""
    select = select_rules(
        [
            (config.select, config.extend_select, config.ignore),
            (overrides.select, overrides.extend_select, overrides.ignore),
        ]
    )
    exclude = overrides.exclude if overrides.exclude is not None else config.exclude
    respect = overrides.respect_gitignore
    return Settings(
        convention=_convention(config, overrides),
        select=select,
        exclude=DEFAULT_EXCLUDES if exclude is None else exclude,
        extend_exclude=config.extend_exclude + overrides.extend_exclude,
        respect_gitignore=config.respect_gitignore is not False if respect is None else respect,
        force_exclude=overrides.force_exclude,
        per_file_ignores=tuple(
            (pattern, frozenset().union(*(expand(s) for s in codes)))
            for pattern, codes in config.per_file_ignores
        ),
        project_root=config.root or os.getcwd(),
        per_file_conventions=_per_file(config, overrides),
    )


def _per_file(
    config: Config, overrides: Overrides
) -> tuple[tuple[str, conventions.Convention], ...]:
    """The file's per-path conventions, unless the command line names one for the run."""
    if overrides.convention is not None or overrides.reset_methods:
        return ()
    hooks = config.reset_methods
    return tuple(
        (pattern, conventions.select(name, hooks if name == "reset-methods" else None))
        for pattern, name in config.per_file_conventions
    )


def _convention(config: Config, overrides: Overrides) -> conventions.Convention:
    """The command line's convention and hooks win together: the file's hooks count only
    for a `reset-methods` convention that the command line leaves in place."""
    name, hooks = config.convention, config.reset_methods  # checked together by `_parse`
    if overrides.convention is not None:
        name, hooks = overrides.convention, overrides.reset_methods
        if name == "reset-methods":
            hooks = hooks or config.reset_methods
    elif overrides.reset_methods:
        name, hooks = "reset-methods", overrides.reset_methods
    try:
        return conventions.select(name, hooks)
    except conventions.UnknownConvention as exc:
        raise ConfigError(f"--convention: {exc}") from None


def _close(word: str, known: Sequence[str]) -> list[str]:
    """The nearest known word, for "did you mean" (difflib: imported for mistakes only)."""
    import difflib

    return difflib.get_close_matches(word, known, n=1)
