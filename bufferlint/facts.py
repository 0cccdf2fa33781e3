"""Per-file facts: what each class builds, rebuilds, calls and inherits.

The facts are plain, picklable data so that they can be computed in worker
processes and cached on disk; nothing here looks beyond one file. They come from
LibCST in `bufferlint.extract`; this module imports neither, nor does
`bufferlint.guards`, whose guards the events carry, so that what only reads facts
(the class model, the cache, a run with nothing to parse) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bufferlint.guards import PathGuard

# torch functions that allocate a new tensor on the default device unless told another
# (bufferlint.values reads them; the prefilter looks for their names).
FACTORIES = frozenset(
    """arange zeros ones full empty tensor as_tensor linspace logspace eye rand randn randint
    randperm tril_indices triu_indices""".split()
)
# `Event.holds`: a tensor made by a factory call the statement itself writes (`self.x =
# torch.zeros(n).float()`: the prefilter sees its text), or any other tensor.
FACTORY, TENSOR = "factory", "tensor"


@dataclass
class Event:
    """Something a method does to `self.<name>`.

    kind: "register" (register_buffer), "buffer" (self.x = nn.Buffer(...)),
    "assign" (self.x = ..., which may also trigger a property setter), "fill"
    (an in-place overwrite), "call" (self.name(...)), "super" (super().name(...)),
    "explicit" (Base.name(self, ...); `target` holds Base's qualified name), "frozen"
    (self.x = nn.Parameter(t, requires_grad=False), or registered so), "update" (an
    in-place change relative to the current value: self.x += 1, self.x.mul_(2)).

    The last fields describe what an "assign" or "register" stores (bufferlint.values):
    `holds` a tensor ("factory" when the statement's own text calls the factory), one
    made on the default device (`fresh`, with the value's code in `code`), or the result
    of `self.<via>(...)` called with `via_args` positional arguments and no device; and
    the `self` attributes the value `aliases`.
    """

    kind: str
    name: str
    line: int
    column: int
    guards: tuple[PathGuard, ...] = ()
    value: str = ""  # "none" | "empty" | "argument" | "computed" for register/buffer
    persistent: bool = True
    target: str = ""
    holds: str = ""
    fresh: bool = False
    via: str = ""
    via_args: int = 0
    aliases: tuple[str, ...] = ()
    code: str = ""


@dataclass
class MethodFacts:
    name: str
    line: int
    kind: str  # "method" | "getter" | "setter" | "static"
    events: list[Event] = field(default_factory=list)
    # For a dispatcher (`_init_weights(self, module)`): what it does to `module`, whose
    # events carry the method's own line.
    dispatched: list[Event] = field(default_factory=list)
    # The parameters after `self`, by name: `auto` recognizes torchtitan's root by its
    # `init_weights(self, buffer_device=None)`.
    params: tuple[str, ...] = ()
    # The children, for a root hook that cascades (bufferlint.children, bufferlint.cascade):
    # (attribute, class name as written) the method constructs into `self.<attribute>`, and
    # (attribute, method) it calls on `self.<attribute>` or on the modules it holds.
    children: tuple[tuple[str, str], ...] = ()
    descends: tuple[tuple[str, str], ...] = ()


@dataclass
class ClassFacts:
    name: str  # qualified within the module: "Outer.Inner", "make.<locals>.Cls"
    line: int
    column: int
    bases: list[str]  # dotted names; "?" for an expression that is no name
    methods: dict[str, MethodFacts] = field(default_factory=dict)
    setters: dict[str, MethodFacts] = field(default_factory=dict)


@dataclass
class ParseFailure:
    line: int
    column: int
    message: str


# What an import statement binds: (local name, qualified name), or (None, module) for
# `from module import *`.
ImportUpdate = tuple[str | None, str]


@dataclass
class FileFacts:
    path: str
    module: str
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)
    classes: list[ClassFacts] = field(default_factory=list)
    error: ParseFailure | None = None
    # The digest of the text, when CPython parsed all of it: no part of that text nests
    # too deeply for LibCST (bufferlint.parsing), so the fixer need not check again.
    compiled: str = ""


def resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module that `from <dots><name> import ...` refers to."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if name:
        parts.append(name)
    return ".".join(parts)
