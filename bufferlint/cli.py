"""The command line: options in, exit code out. No analysis happens here."""

from __future__ import annotations

import sys

import click

from bufferlint import __version__
from bufferlint.engine import Settings, lint
from bufferlint.output import FORMATS, summary
from bufferlint.sources import SourceError

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--output-format",
    type=click.Choice(sorted(FORMATS)),
    default="concise",
    show_default=True,
    help="How to print findings.",
)
@click.option(
    "--reset-method",
    "reset_methods",
    multiple=True,
    metavar="NAME",
    help="A materialization hook (repeatable; replaces the default reset_parameters).",
)
@click.version_option(__version__, "--version", prog_name="bufferlint")
def main(paths: tuple[str, ...], output_format: str, reset_methods: tuple[str, ...]) -> None:
    """Find buffers that come out as garbage when a model is materialized from meta.

    Exit status: 0 no findings, 1 findings (or files that failed to parse),
    2 usage or configuration error.
    """
    settings = Settings(hooks=reset_methods or Settings().hooks)
    try:
        result = lint(list(paths) or ["."], settings)
    except SourceError as exc:
        raise click.UsageError(str(exc)) from None
    out = FORMATS[output_format](result.findings)
    sys.stdout.write(out)
    if output_format != "json":
        sys.stdout.write(summary(result.findings, result.files))
    sys.exit(EXIT_FINDINGS if result.findings else EXIT_CLEAN)
