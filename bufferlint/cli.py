"""The command line: options in, exit code out. No analysis happens here.

`bufferlint [OPTIONS] [PATHS]` checks (the hidden `check` command, as in `ruff check`, which
also works); `bufferlint rule CODE` prints a rule's page. A folder literally named `rule` or
`check` is linted as `bufferlint ./rule`.

Every error a user can cause is one line on stderr and exit status 2; findings exit 1,
except those that `--runtime` refuted.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bufferlint import __version__, conventions
from bufferlint.config import (
    Config,
    ConfigError,
    Overrides,
    check_reset_methods,
    check_selectors,
    discover,
    resolve,
)
from bufferlint.engine import Result, Settings, lint, lint_source
from bufferlint.output import FORMATS, TEXT_FORMATS, Report, render_statistics, summary
from bufferlint.pool import WorkerDied, quiet_gc
from bufferlint.rules import RULES
from bufferlint.runtime import ALL_RECIPES, RuntimeSettings, RuntimeUnavailable
from bufferlint.sources import SourceError

if TYPE_CHECKING:
    from bufferlint.model import Project
    from bufferlint.pool import LintWorkers
    from bufferlint.prefilter import FileIndex

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class UserError(click.ClickException):
    """Anything a user can get wrong: one line on stderr, exit status 2."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"bufferlint: error: {self.format_message()}", err=True)


class _Cli(click.Group):
    """Runs `check` unless the first argument names another command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # an unknown option or a bad value: one line too
            raise UserError(exc.format_message()) from None
        except WorkerDied as exc:  # killed for memory, most likely
            raise UserError(f"{exc}; --jobs 1 lints in one process") from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug in bufferlint: one line, as for the user's errors
            if os.environ.get("BUFFERLINT_TRACEBACK"):
                raise
            first = next(iter(str(exc).splitlines()), "")
            raise UserError(
                f"internal error ({type(exc).__name__}: {first}); this is a bug in "
                "bufferlint, please report it (BUFFERLINT_TRACEBACK=1 shows where)"
            ) from None


class _Command(click.Command):
    """Shows usage as `bufferlint ...` rather than the hidden `bufferlint check ...`."""

    def __init__(self, *args: Any, usage: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage = usage

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("bufferlint", self.usage)


@click.group(cls=_Cli, context_settings=CONTEXT)
def main() -> None:
    """bufferlint: find buffers that come out as garbage when a model is materialized."""


def entry() -> None:
    """The console script (and `python -m bufferlint`): `main`, then an exit that skips
    the interpreter's teardown, as mypy does, where nothing is left to release. That
    teardown takes 30 ms of a one-file run once LibCST is loaded (a tenth of pre-commit's
    budget) and half a second after a large tree; everything bufferlint writes is written
    and closed before it. Cycles are collected rarely in this process too, as mypy does:
    the default thresholds cost half a second of collections after a large tree."""
    quiet_gc()
    try:
        main()
    except SystemExit as exc:
        if not _nothing_to_release():
            raise
        code = exc.code
    else:  # pragma: no cover - click's standalone mode always exits
        code = 0
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away
            stream.flush()
    os._exit(code)


def _nothing_to_release() -> bool:
    """No worker process is alive, and none came from the runtime mode's forkserver or
    spawn, whose named semaphores multiprocessing releases at exit (the lint's forked
    pools make none, and are closed by now)."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return True
    return not multiprocessing.active_children() and "bufferlint.runtime.launch" not in sys.modules


def _codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    """Comma-separated and repeated values, as ruff's list options take them."""
    items = tuple(item.strip() for value in values for item in value.split(",") if item.strip())
    if option in ("--select", "--extend-select", "--ignore"):
        try:
            check_selectors(items, f"{option}:")
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    return items


@main.command(
    "check",
    cls=_Command,
    usage="[OPTIONS] [PATHS]...\n       bufferlint rule [CODE | --all]",
    hidden=True,
    context_settings=CONTEXT,
)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="Settings file (pyproject.toml or bufferlint.toml) instead of the nearest "
    "pyproject.toml with [tool.bufferlint].",
)
@click.option(
    "--select", multiple=True, metavar="CODES", help="Rules to enable, replacing `select`."
)
@click.option("--extend-select", multiple=True, metavar="CODES", help="Rules to enable too.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rules to disable.")
@click.option(
    "--exclude", multiple=True, metavar="GLOBS", help="Globs to skip, replacing `exclude`."
)
@click.option("--extend-exclude", multiple=True, metavar="GLOBS", help="Globs to skip too.")
@click.option(
    "--force-exclude",
    is_flag=True,
    help="Apply the excludes to files named explicitly too (for pre-commit).",
)
@click.option(
    "--respect-gitignore/--no-respect-gitignore",
    default=None,
    help="Skip files that .gitignore ignores (default: respect).",
)
@click.option(
    "--convention",
    metavar="NAME",
    help="The materialization convention to judge findings under: "
    f"{', '.join(conventions.NAMES)} [default: {conventions.DEFAULT.name}].",
)
@click.option(
    "--reset-method",
    "reset_methods",
    multiple=True,
    metavar="NAME",
    help="A hook of the reset-methods convention (repeatable; replaces `reset-methods`).",
)
@click.option(
    "--output-format",
    type=click.Choice(list(FORMATS)),
    envvar="BUFFERLINT_OUTPUT_FORMAT",
    help="How to print findings [default: full on a terminal, concise otherwise].",
)
@click.option(
    "-o", "--output-file", metavar="FILE", help="Write the output to FILE instead of stdout."
)
@click.option("--statistics", is_flag=True, help="Count findings per rule instead of listing them.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings, but not the summary.")
@click.option("-s", "--silent", is_flag=True, help="Print nothing; only the exit status tells.")
@click.option(
    "--stdin-filename",
    metavar="PATH",
    help="Read the source from stdin (also with the path `-`) and report it under PATH; "
    "its parents still come from the project around PATH.",
)
@click.option("--fix", is_flag=True, help="Rebuild the missed buffers in the hook, in place.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that may change behaviour.")
@click.option(
    "--diff",
    is_flag=True,
    help="Print the fixes as a unified diff instead of writing them (exit 1 if any).",
)
@click.option(
    "--runtime",
    is_flag=True,
    help="Confirm each finding by building its class on the meta device and materializing it "
    'in worker processes (needs `pip install "bufferlint[runtime]"`).',
)
@click.option(
    "--materialize",
    type=click.Choice(["auto", *ALL_RECIPES]),
    help="How --runtime materializes: the recipe of your training stack [default: auto: the "
    "convention's own recipe].",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    metavar="N",
    help="Ranks per --runtime check, joined by torch.distributed (gloo on CPU) [default: 1].",
)
@click.option(
    "--runtime-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up on one class after this long [default: 60].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Processes that parse files [default: one per CPU; few files are parsed in-process].",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write .bufferlint_cache.")
@click.version_option(__version__, "--version", prog_name="bufferlint")
def check(
    paths: tuple[str, ...],
    config_file: str | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    force_exclude: bool,
    respect_gitignore: bool | None,
    convention: str | None,
    reset_methods: tuple[str, ...],
    output_format: str | None,
    output_file: str | None,
    statistics: bool,
    exit_zero: bool,
    quiet: bool,
    silent: bool,
    stdin_filename: str | None,
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    runtime: bool,
    materialize: str | None,
    devices: int | None,
    runtime_timeout: float | None,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Find buffers that come out as garbage when a model is materialized from `meta`.

    PATHS are files or folders (default: the current folder); `-` reads stdin. Settings come
    from [tool.bufferlint] in the nearest pyproject.toml; flags override them. CODES and
    GLOBS are comma-separated and the options repeatable. `bufferlint rule CODE` explains a
    rule.

    --runtime builds each flagged class and adds a verdict: confirmed, refuted,
    unconfirmed or error. [tool.bufferlint.runtime] sets the same options; flags win.

    Exit status: 0 no findings, 1 findings (or files that could not be parsed), 2 usage or
    configuration error, or --runtime without torch installed. A finding that --runtime
    refuted does not count towards status 1.
    """
    stdin_path = _stdin_path(paths, stdin_filename)
    overrides = Overrides(
        select=_codes(select, "--select") or None,
        extend_select=_codes(extend_select, "--extend-select"),
        ignore=_codes(ignore, "--ignore"),
        exclude=_codes(exclude, "--exclude") or None,
        extend_exclude=_codes(extend_exclude, "--extend-exclude"),
        respect_gitignore=respect_gitignore,
        force_exclude=force_exclude,
        convention=convention,
        reset_methods=reset_methods or None,
    )
    config, settings = _settings(list(paths), stdin_path, config_file, overrides)
    settings = replace(settings, jobs=jobs or 0, cache=not no_cache)
    flags = {"recipe": materialize, "devices": devices, "timeout": runtime_timeout}
    runtime_settings = _runtime_settings(runtime, flags, config, settings, stdin_path, diff)
    fmt = output_format or ("full" if sys.stdout.isatty() and not output_file else "concise")
    texts: dict[str, str] = {}
    if fix or diff:
        if stdin_path is not None:
            raise UserError("--fix and --diff work on files, not on stdin")
        result, fixed = _fix(list(paths) or ["."], settings, unsafe_fixes, diff, runtime_settings)
    else:
        # Fixes are planned only where the output shows them (`[*]`, edits, statistics).
        plan = not silent and (statistics or fmt in TEXT_FORMATS or fmt in EDIT_FORMATS)
        edits = (fmt in EDIT_FORMATS and not statistics) if plan else None
        result, texts = _run(list(paths) or ["."], settings, stdin_path, unsafe_fixes, edits)
        fixed = 0
    if runtime_settings is not None:
        _confirm(result, runtime_settings)
    if not silent:
        _write(_rendered(result, texts, fixed, fmt, statistics, quiet), output_file)
    failing = any(f.verdict != "refuted" for f in result.findings)
    sys.exit(EXIT_FINDINGS if failing and not exit_zero else EXIT_CLEAN)


def _confirm(result: Result, runtime: RuntimeSettings) -> None:
    """Each finding's runtime verdict; a finding whose fix --fix --runtime did not write
    keeps why in `runtime` too (`fix_check`, from bufferlint.fix.verify)."""
    from bufferlint.runtime.attach import confirm_findings

    try:  # `auto` knows the recipes, and so the packages, only once findings name them
        confirm_findings(result.findings, runtime)
    except RuntimeUnavailable as exc:
        raise UserError(str(exc)) from None
    for finding in result.findings:
        if finding.runtime is not None and "fix_check" in finding.extra:
            finding.runtime["fix_check"] = finding.extra["fix_check"]


def _stdin_path(paths: Sequence[str], stdin_filename: str | None) -> str | None:
    """Where the text on stdin is reported, or None when the paths are files."""
    stdin = "-" in paths or (stdin_filename is not None and not paths)
    if stdin and len(paths) > 1:
        raise UserError("`-` (stdin) cannot be combined with other paths")
    return os.path.abspath(stdin_filename or "-") if stdin else None


def _settings(
    paths: list[str], stdin_path: str | None, config_file: str | None, overrides: Overrides
) -> tuple[Config, Settings]:
    """The config file the paths find, and the engine's settings: file, then flags."""
    try:
        if overrides.reset_methods:
            check_reset_methods(overrides.reset_methods, "--reset-method")
        config = discover([stdin_path] if stdin_path else paths, config_file)
        return config, resolve(config, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _rendered(
    result: Result, texts: dict[str, str], fixed: int, fmt: str, statistics: bool, quiet: bool
) -> str:
    if statistics:
        return render_statistics(result.findings, as_json=fmt in ("json", "json-lines"))
    text = FORMATS[fmt](Report(result.findings, result.files, texts=texts))
    if fmt in TEXT_FORMATS and not quiet:
        text += summary(result.findings, result.files, fixed)
    return text


# Output formats that show each fix's edits; the others need only whether there is one.
EDIT_FORMATS = frozenset({"json", "json-lines", "sarif"})

# Each runtime flag and the RuntimeSettings field it sets.
_RUNTIME_FLAGS = {"materialize": "recipe", "devices": "devices", "runtime-timeout": "timeout"}


def _runtime_settings(
    runtime: bool,
    flags: dict[str, Any],
    config: Config,
    settings: Settings,
    stdin_path: str | None,
    diff: bool,
) -> RuntimeSettings | None:
    """`--runtime`'s settings, or None without it; every mistake is a UserError. torch is
    imported only in worker processes, and only with --runtime."""
    given = [f"--{name}" for name, value in _RUNTIME_FLAGS.items() if flags[value] is not None]
    if not runtime:
        if given:
            raise UserError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --runtime"
            )
        return None
    if stdin_path is not None:
        raise UserError("--runtime imports the classes from files, so it cannot check stdin")
    if diff:
        raise UserError("--runtime cannot be combined with --diff")
    from bufferlint.runtime.attach import settings_for

    try:
        return settings_for(config.runtime.values(), flags, settings.convention)
    except (ValueError, RuntimeUnavailable) as exc:
        raise UserError(str(exc)) from None


def _fix(
    paths: list[str],
    settings: Settings,
    unsafe: bool,
    diff: bool,
    runtime: RuntimeSettings | None = None,
) -> tuple[Result, int]:
    """Fixes in memory; `--diff` prints the diff and exits (1 when there is one), `--fix`
    writes the files and returns what is left and how many findings it fixed. With
    `runtime`, only the fixes the runtime check shows right are written."""
    from bufferlint.fix import fix_paths  # LibCST's codemods: only when needed

    failed: dict[Any, Any] = {}
    try:
        if runtime is None:
            run = fix_paths(paths, settings, unsafe)
        else:
            from bufferlint.fix.verify import fix_verified

            try:
                run, failed = fix_verified(paths, settings, unsafe, runtime)
            except OSError as exc:  # the temporary mirror the fixes are checked in
                raise UserError(f"--runtime cannot check the fixes: {exc}") from None
    except SourceError as exc:
        raise UserError(str(exc)) from None
    except RuntimeUnavailable as exc:
        raise UserError(str(exc)) from None
    if diff:
        sys.stdout.write(run.diff())
        for problem in run.problems:
            click.echo(f"bufferlint: {problem}", err=True)
        count = len(run.fixed)
        click.echo(f"Would fix {count} error{'s' if count != 1 else ''}.", err=True)
        sys.exit(EXIT_FINDINGS if run.texts else EXIT_CLEAN)
    run.write()
    if failed:  # a failed write lints again: the findings need their reasons back
        from bufferlint.fix.verify import mark

        mark(run.result.findings, failed)
    for problem in run.problems:
        click.echo(f"bufferlint: {problem}", err=True)
    return run.result, len(run.fixed)


def _run(
    paths: list[str],
    settings: Settings,
    stdin_path: str | None,
    unsafe: bool,
    edits: bool | None,
) -> tuple[Result, dict[str, str]]:
    """Lints the paths (fixes attached unless `edits` is None, with their edits if it is
    true, cached with the findings), or the text on stdin as if it were saved at
    `stdin_path`."""
    if stdin_path is None:
        try:
            if edits is None:  # an output that shows no fixes: planning them is wasted
                return lint(paths, settings, None, "no fixes"), {}
            fixes = partial(_attach_fixes, settings=settings, unsafe=unsafe, edits=edits)
            return lint(paths, settings, fixes, f"fixes, unsafe={unsafe}, edits={edits}"), {}
        except SourceError as exc:
            raise UserError(str(exc)) from None
    text = _read_stdin()
    if settings.force_exclude and settings.path_filter().skip_named(Path(stdin_path)):
        return Result(), {}
    return lint_source(stdin_path, text, settings), {stdin_path: text}


def _attach_fixes(
    result: Result,
    project: Project,
    splits: Mapping[str, FileIndex],
    workers: LintWorkers | None,
    settings: Settings,
    unsafe: bool,
    edits: bool,
) -> None:
    """bufferlint.fix imports LibCST's codemods (slow to import): only for findings."""
    if result.findings:
        from bufferlint.fix import attach_fixes

        attach_fixes(result, settings, unsafe, project, edits, splits, workers)


def _read_stdin() -> str:
    """Decoded as Python decodes a file: BOM, coding cookie, else UTF-8."""
    data = sys.stdin.buffer.read()  # (click.get_binary_stream is deprecated)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise UserError(f"stdin: cannot decode: {exc}") from None
    return text.removeprefix("\ufeff")


def _write(text: str, output_file: str | None) -> None:
    if output_file is None:
        sys.stdout.write(text)
        return
    try:
        Path(output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output-file {output_file}: {exc.strerror or exc}") from None


@main.command("rule", cls=_Command, usage="rule [OPTIONS] [CODE | --all]", context_settings=CONTEXT)
@click.argument("name", metavar="CODE", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule.")
@click.option(
    "--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def rule(name: str | None, show_all: bool, output_format: str) -> None:
    """Print a rule's page (by code or name), or list every rule with --all."""
    from bufferlint.docs import find_rule, render_page

    if show_all == (name is not None):
        raise UserError("give a rule code (`bufferlint rule BL001`) or --all")
    if name is not None:
        found = find_rule(name)
        if found is None:
            raise UserError(f"unknown rule `{name}`; known rules: {', '.join(RULES)}")
        chosen = [found]
    else:
        chosen = list(RULES.values())
    if output_format == "json":
        items = [
            {
                "code": r.code,
                "name": r.name,
                "summary": r.summary,
                "url": r.url,
                "explanation": render_page(r),
            }
            for r in chosen
        ]
        import json

        click.echo(json.dumps(items if show_all else items[0], indent=2))
    elif show_all:
        width = max(len(r.name) for r in chosen)
        for r in chosen:
            click.echo(f"{r.code}  {r.name:<{width}}  {r.summary}")
    else:
        click.echo(render_page(chosen[0]), nl=False)
