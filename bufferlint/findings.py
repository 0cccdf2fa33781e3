"""What the rules report: plain data that every output format and the fixer read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bufferlint.sources import SourceFile


@dataclass(frozen=True)
class BufferSite:
    """One affected buffer, with what a user needs to judge and repair it."""

    name: str
    line: int
    persistent: bool
    defined_in: str  # qualified name of the class whose code builds it
    path: str = ""  # the file holding that code (absolute)


@dataclass
class Finding:
    code: str | None  # None for a file that could not be read or parsed, as in ruff
    message: str
    path: str  # absolute path
    line: int
    column: int
    end_line: int
    end_column: int
    class_name: str  # qualified within its module, e.g. "Outer.Inner"
    module: str  # dotted module name, importable from `import_root`
    import_root: str  # the folder to put on sys.path to import `module`
    buffers: tuple[BufferSite, ...] = ()
    hooks: tuple[str, ...] = ()  # the methods that should rebuild them, by the convention
    convention: str = ""  # the materialization convention the finding was judged under
    fix: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def at_line(
        cls, source: SourceFile, code: str | None, message: str, line: int, column: int, end: int
    ) -> Finding:
        """A finding about a place in a file rather than a class (parse failures, noqa)."""
        return cls(
            code=code,
            message=message,
            path=source.path,
            line=line,
            column=column,
            end_line=line,
            end_column=end,
            class_name="",
            module=source.module,
            import_root=source.import_root,
            hooks=(),
        )

    @property
    def buffer_names(self) -> list[str]:
        return [b.name for b in self.buffers]

    @property
    def verdict(self) -> str | None:
        """The runtime verdict (confirmed, refuted, unconfirmed, error); None without --runtime."""
        return None if self.runtime is None else self.runtime.get("verdict")

    @property
    def fixable(self) -> bool:
        """Whether `--fix` would apply `fix`: an unsafe fix without `--unsafe-fixes` is
        hidden (bufferlint.fix sets `extra["fix_hidden"]`), as in ruff."""
        return self.fix is not None and not self.extra.get("fix_hidden", False)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.code or "")
