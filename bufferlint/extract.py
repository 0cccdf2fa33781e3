"""Extracts a file's facts with LibCST, without its metadata providers: positions come
from a forward text search for each node's first line, and the tree is walked over its
dataclass fields, because LibCST's own visitor rebuilds every node.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence

import libcst as cst

from bufferlint import parsing, walk
from bufferlint.facts import (
    ClassFacts,
    Event,
    FileFacts,
    ImportUpdate,
    MethodFacts,
    ParseFailure,
    resolve_relative,
)
from bufferlint.guards import (
    AllOf,
    AnyOf,
    Guard,
    HasAttr,
    IsMeta,
    IsNone,
    Not,
    Opaque,
    PathGuard,
    ReadsState,
)
from bufferlint.syntax import argument, dotted, qualify, string_value

# In-place methods that overwrite every element whatever it held before.
OVERWRITING_METHODS = frozenset(
    {
        "fill_",
        "copy_",
        "zero_",
        "normal_",
        "uniform_",
        "random_",
        "bernoulli_",
        "exponential_",
        "geometric_",
        "cauchy_",
        "log_normal_",
        "set_",
    }
)
EMPTY_FACTORIES = frozenset(
    {"torch.empty", "torch.empty_like", "torch.empty_strided", "torch.empty_permuted"}
)
BUFFER_CLASSES = frozenset({"torch.nn.Buffer", "torch.nn.parameter.Buffer"})
TENSOR_STATE_ATTRS = frozenset(
    {"device", "shape", "size", "dtype", "numel", "dim", "ndim", "data", "nelement", "is_meta"}
)


class _Locator:
    """Finds source lines for nodes visited in document order, without metadata.

    LibCST's PositionProvider regenerates the whole file and costs twice the
    parse; searching forward for each node's own code costs next to nothing.
    """

    def __init__(self, source: str, module: cst.Module) -> None:
        self.source = source
        self.module = module
        self.cursor = 0
        self._last_node: cst.CSTNode | None = None
        self._last_position = (1, 1)
        # Only `\n` ends lines (nearly always): lines are counted as the cursor moves on,
        # rather than listing every line start of the file first.
        self.line_starts = (
            [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)] if "\r" in source else None
        )
        self._counted = 0  # lines up to this offset are counted:
        self._line = 1  # the line it is on

    def _position(self, offset: int) -> tuple[int, int]:
        if self.line_starts is None:
            if offset < self._counted:
                self._counted, self._line = 0, 1
            self._line += self.source.count("\n", self._counted, offset)
            self._counted = offset
            return self._line, offset - self.source.rfind("\n", 0, offset)
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def find(self, needle: str, past: bool = False) -> tuple[int, int]:
        """The position of the next `needle`; `past` moves on so that it is not found twice."""
        offset = self.source.find(needle, self.cursor) if needle else -1
        if offset < 0:
            return self._position(self.cursor)
        self.cursor = offset + 1 if past else offset
        return self._position(offset)

    def node(self, node: cst.CSTNode) -> tuple[int, int]:
        """Searches the node's first line: generated code of a node that spans lines
        lacks the block's indentation, so only its first line is verbatim."""
        if node is self._last_node:
            return self._last_position
        first = self.module.code_for_node(node).splitlines()[0]
        self._last_node, self._last_position = node, self.find(first, past=True)
        return self._last_position

    def class_keyword(self, name: str) -> tuple[int, int]:
        match = re.compile(rf"\bclass\s+{re.escape(name)}\b").search(self.source, self.cursor)
        if match is None:
            return self._position(self.cursor)
        self.cursor = match.start()
        return self._position(match.start() + match.group(0).rindex(name))


class _Extractor:
    def __init__(
        self,
        source: str,
        module_cst: cst.Module,
        facts: FileFacts,
        is_package: bool,
        nodes: Located | None = None,
    ):
        self.facts = facts
        self.is_package = is_package
        self.locate = _Locator(source, module_cst)
        self.module_cst = module_cst
        self.nodes = nodes  # when given, where each class name and event node was found

    # -- names ---------------------------------------------------------------
    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name of a dotted name; as written when its head is not imported."""
        return qualify(expr, self.facts.imports) or dotted(expr)

    def code(self, node: cst.CSTNode) -> str:
        return self.module_cst.code_for_node(node)

    # -- imports -------------------------------------------------------------
    def record_import(self, node: cst.Import | cst.ImportFrom) -> None:
        imports = self.facts.imports
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted(alias.name) or ""
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    imports[alias.asname.name.value] = full
                else:
                    head = full.split(".")[0]
                    imports[head] = head
            return
        level = len(node.relative)
        base = dotted(node.module) if node.module is not None else None
        if level:
            base = resolve_relative(self.facts.module, self.is_package, level, base)
        if base is None:
            return
        if isinstance(node.names, cst.ImportStar):
            self.facts.star_imports.append(base)
            return
        for alias in node.names:
            name = dotted(alias.name) or ""
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            imports[local] = f"{base}.{name}" if base else name

    # -- module walk -----------------------------------------------------------
    def run(self, placeholder_imports: Sequence[Sequence[ImportUpdate]] | None = None) -> None:
        """Walks the module. With `placeholder_imports`, the source is `partial.reduced`
        text and each of its placeholder strings stands for statements that bound these
        names: they take effect where the placeholder stands, as in the whole file."""
        if placeholder_imports is None:
            self.walk_scope(self.module_cst.body, prefix="")
            return
        pending = iter(placeholder_imports)
        for stmt in self.module_cst.body:
            if is_placeholder(stmt):
                self.apply_imports(next(pending, ()))
            else:
                self.walk_scope([stmt], prefix="")
        for rest in pending:  # a last placeholder without a line break is not written
            self.apply_imports(rest)

    def apply_imports(self, updates: Iterable[ImportUpdate]) -> None:
        for local, qualified in updates:
            if local is None:
                self.facts.star_imports.append(qualified)
            else:
                self.facts.imports[local] = qualified

    def walk_scope(self, body: object, prefix: str) -> None:
        """Visits statements that can hold imports or classes, in document order."""
        for stmt in _statements(body):
            if isinstance(stmt, cst.SimpleStatementLine):
                if not prefix:
                    for small in stmt.body:
                        if isinstance(small, (cst.Import, cst.ImportFrom)):
                            self.record_import(small)
            elif isinstance(stmt, cst.ClassDef):
                self.visit_class(stmt, prefix)
            elif isinstance(stmt, cst.FunctionDef):
                self.walk_scope(stmt.body, f"{prefix}{stmt.name.value}.<locals>.")
            else:
                for block in _blocks(stmt):
                    self.walk_scope(block, prefix)

    def visit_class(self, node: cst.ClassDef, prefix: str) -> None:
        line, column = self.locate.class_keyword(node.name.value)
        if self.nodes is not None:
            self.nodes.setdefault((line, column), []).append(node.name)
        bases = []
        for arg in node.bases:
            if arg.keyword is not None:
                continue
            value = arg.value
            if isinstance(value, cst.Subscript):
                value = value.value
            bases.append(self.qualify(value) or "?")
        facts = ClassFacts(f"{prefix}{node.name.value}", line, column, bases)
        self.facts.classes.append(facts)
        for stmt in _statements(node.body):
            for item in _flatten_class_body(stmt):
                if isinstance(item, cst.FunctionDef):
                    self.visit_method(item, facts)
                elif isinstance(item, cst.ClassDef):
                    self.visit_class(item, f"{facts.name}.")

    def visit_method(self, node: cst.FunctionDef, owner: ClassFacts) -> None:
        kind = "method"
        for decorator in node.decorators:
            name = dotted(decorator.decorator) or ""
            if name in ("staticmethod", "classmethod"):
                kind = "static"
            elif name == "property":
                kind = "getter"
            elif name.endswith(".setter"):
                kind = "setter"
        params = node.params.posonly_params or node.params.params
        line, _ = self.locate.find(f"def {node.name.value}", past=True)
        method = MethodFacts(node.name.value, line, kind)
        if kind != "static" and params:
            arguments = {
                p.name.value
                for p in (
                    *node.params.posonly_params,
                    *node.params.params,
                    *node.params.kwonly_params,
                )
            }
            walker = _MethodWalker(self, method, params[0].name.value, arguments)
            walker.walk(node.body, ())
        else:
            self.walk_scope(node.body, f"{owner.name}.{node.name.value}.<locals>.")
        target = owner.setters if kind == "setter" else owner.methods
        target.setdefault(node.name.value, method)


class _MethodWalker:
    """Records the events of one method body, each with the guards above it."""

    def __init__(
        self, extractor: _Extractor, method: MethodFacts, self_name: str, arguments: set[str]
    ) -> None:
        self.x = extractor
        self.method = method
        self.self_name = self_name
        self.arguments = arguments - {self_name}

    def is_self(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.self_name

    def self_attr(self, node: cst.BaseExpression) -> str | None:
        """`name` for `self.name`, also through `.data` and subscripts."""
        while isinstance(node, cst.Subscript):
            node = node.value
        if isinstance(node, cst.Attribute):
            if self.is_self(node.value):
                return node.attr.value
            if node.attr.value == "data":
                return self.self_attr(node.value)
        return None

    def emit(self, kind: str, name: str, node: cst.CSTNode, guards: tuple, **extra: object) -> None:
        line, column = self.x.locate.node(node)
        self.method.events.append(Event(kind, name, line, column, guards, **extra))
        if self.x.nodes is not None:
            self.x.nodes.setdefault((line, column), []).append(node)

    # -- statements ------------------------------------------------------------
    def walk(self, body: object, guards: tuple[PathGuard, ...]) -> None:
        for stmt in _statements(body):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    self.small_statement(small, guards)
            elif isinstance(stmt, cst.If):
                self.walk_if(stmt, guards)
            elif isinstance(stmt, cst.ClassDef):
                self.x.visit_class(stmt, f"{self.method.name}.<locals>.")
            elif isinstance(stmt, cst.FunctionDef):
                continue  # a nested function runs only if called: not followed
            else:
                for expr in _header_expressions(stmt):
                    self.expression(expr, guards)
                for block in _blocks(stmt):
                    self.walk(block, guards)

    def walk_if(self, node: cst.If, guards: tuple[PathGuard, ...]) -> None:
        self.expression(node.test, guards)
        condition = self.guard(node.test)
        code = self.x.code(node.test)
        self.walk(node.body, (*guards, PathGuard(condition, True, code)))
        negated = (*guards, PathGuard(condition, False, code))
        if isinstance(node.orelse, cst.If):
            self.walk_if(node.orelse, negated)
        elif isinstance(node.orelse, cst.Else):
            self.walk(node.orelse.body, negated)

    def small_statement(self, node: cst.BaseSmallStatement, guards: tuple) -> None:
        if isinstance(node, (cst.Assign, cst.AnnAssign)):
            targets: list[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    targets.extend(_unpack(target.target))
            elif node.value is not None:  # a bare annotation assigns nothing
                targets.extend(_unpack(node.target))
            value = node.value
            for target in targets:  # located before the value: the cursor only moves forward
                self.assignment(node, target, value, guards)
            if value is not None:
                self.expression(value, guards)
        elif isinstance(node, cst.AugAssign):
            self.expression(node.value, guards)
        elif isinstance(node, cst.Expr):
            self.expression(node.value, guards)
        elif isinstance(node, cst.Return) and node.value is not None:
            self.expression(node.value, guards)

    def assignment(
        self,
        statement: cst.CSTNode,
        target: cst.BaseExpression,
        value: cst.BaseExpression | None,
        guards: tuple,
    ) -> None:
        if isinstance(target, cst.Attribute) and self.is_self(target.value):
            name = target.attr.value
            if isinstance(value, cst.Call) and self.x.qualify(value.func) in BUFFER_CLASSES:
                data = argument(value, 0, "data")
                persistent = _literal_bool(argument(value, 1, "persistent"))
                self.emit(
                    "buffer",
                    name,
                    statement,
                    guards,
                    value=self.classify(data),
                    persistent=persistent,
                )
            else:
                self.emit("assign", name, statement, guards)
            return
        name = self.self_attr(target)
        if name is not None:  # self.b[...] = ..., self.b.data = ...
            self.emit("fill", name, statement, guards)

    # -- expressions -----------------------------------------------------------
    def expression(self, node: cst.BaseExpression, guards: tuple) -> None:
        for call in _calls(node):
            self.call(call, guards)

    def call(self, node: cst.Call, guards: tuple) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value == "setattr" and len(node.args) >= 2:
            name = string_value(node.args[1].value)
            if self.is_self(node.args[0].value) and name is not None:
                self.emit("assign", name, node, guards)
            return
        if not isinstance(func, cst.Attribute):
            return
        method = func.attr.value
        receiver = func.value
        if self.is_self(receiver):
            if method == "register_buffer":
                self.register(node, guards)
            else:
                self.emit("call", method, node, guards)
            return
        if isinstance(receiver, cst.Call) and dotted(receiver.func) == "super":
            if method == "register_buffer":
                self.register(node, guards)
            else:
                self.emit("super", method, node, guards)
            return
        if method in OVERWRITING_METHODS:
            name = self.self_attr(receiver)
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        qualified = self.x.qualify(func) or ""
        if qualified.startswith("torch.nn.init.") and method.endswith("_") and node.args:
            name = self.self_attr(node.args[0].value)
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        first = node.args[0].value if node.args else None
        if first is not None and self.is_self(first):
            owner = self.x.qualify(receiver)
            if owner:
                self.emit("explicit", method, node, guards, target=owner)

    def register(self, node: cst.Call, guards: tuple) -> None:
        name = string_value(argument(node, 0, "name") or cst.Name("None"))
        if name is None:
            return  # a computed name cannot be followed statically
        value = argument(node, 1, "tensor")
        persistent = _literal_bool(argument(node, 2, "persistent"))
        self.emit("register", name, node, guards, value=self.classify(value), persistent=persistent)

    def classify(self, value: cst.BaseExpression | None) -> str:
        if value is None or (isinstance(value, cst.Name) and value.value == "None"):
            return "none"
        if isinstance(value, cst.Name) and value.value in self.arguments:
            return "argument"  # the caller's tensor: the module cannot rebuild it
        if isinstance(value, cst.Call):
            if self.x.qualify(value.func) in EMPTY_FACTORIES:
                return "empty"
            if isinstance(value.func, cst.Attribute) and value.func.attr.value == "new_empty":
                return "empty"
        return "computed"

    # -- guards ----------------------------------------------------------------
    def guard(self, node: cst.BaseExpression) -> Guard:
        """Reduces a condition to what materialization changes about it."""
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            inner = self.guard(node.expression)
            return inner.operand if isinstance(inner, Not) else Not(inner)  # `not not x` is x
        if isinstance(node, cst.BooleanOperation):
            # `a and b and c` as one flat guard: LibCST nests it as deep as it is long.
            operator = type(node.operator)
            operands: list[cst.BaseExpression] = [node.right]
            left = node.left
            while isinstance(left, cst.BooleanOperation) and isinstance(left.operator, operator):
                operands.append(left.right)
                left = left.left
            operands.append(left)
            parts = tuple(self.guard(part) for part in reversed(operands))
            return AllOf(parts) if operator is cst.And else AnyOf(parts)
        if isinstance(node, cst.Call) and dotted(node.func) in ("hasattr", "getattr"):
            if len(node.args) >= 2 and self.is_self(node.args[0].value):
                name = string_value(node.args[1].value)
                if name is not None:
                    return HasAttr(name)
        if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
            target = node.comparisons[0]
            operator = target.operator
            left, right = node.left, target.comparator
            if isinstance(right, cst.Name) and right.value == "None":
                name = self.self_attr_exact(left)
                if name is not None:
                    return Not(IsNone(name)) if isinstance(operator, cst.IsNot) else IsNone(name)
            meta = self.meta_check(left, right) or self.meta_check(right, left)
            if meta is not None:
                if isinstance(operator, (cst.NotEqual, cst.IsNot)):
                    return Not(IsMeta(meta))
                if isinstance(operator, (cst.Equal, cst.Is)):
                    return IsMeta(meta)
        if isinstance(node, cst.Attribute) and node.attr.value == "is_meta":
            name = self.self_attr_exact(node.value)
            if name is not None:
                return IsMeta(name)
        for name in self.inspected_state(node):
            return ReadsState(name)
        return Opaque(self.x.code(node))

    def self_attr_exact(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Attribute) and self.is_self(node.value):
            return node.attr.value
        return None

    def meta_check(self, side: cst.BaseExpression, other: cst.BaseExpression) -> str | None:
        """`b` when one side is `self.b.device(.type)` and the other names "meta"."""
        if isinstance(side, cst.Attribute) and side.attr.value == "type":
            side = side.value
        if not (isinstance(side, cst.Attribute) and side.attr.value == "device"):
            return None
        name = self.self_attr_exact(side.value)
        if name is None or "meta" not in self.x.code(other):
            return None
        return name

    def inspected_state(self, node: cst.BaseExpression) -> list[str]:
        """Names `b` whose tensor state (`self.b.size(0)`, `len(self.b)`) the node reads."""
        found = []
        for attribute in _attributes(node):
            if attribute.attr.value in TENSOR_STATE_ATTRS:
                name = self.self_attr_exact(attribute.value)
                if name is not None:
                    found.append(name)
        for call in _calls(node):
            if dotted(call.func) == "len" and call.args:
                name = self.self_attr_exact(call.args[0].value)
                if name is not None:
                    found.append(name)
        return found


# -- small CST helpers -----------------------------------------------------------


def _statements(body: object) -> list[cst.CSTNode]:
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return list(body.body)
    if isinstance(body, (list, tuple)):
        return list(body)
    return []


def _blocks(stmt: cst.CSTNode) -> list[object]:
    """The statement blocks of a compound statement, in document order."""
    blocks: list[object] = []
    if isinstance(stmt, cst.If):
        blocks.append(stmt.body)
        if stmt.orelse is not None:
            blocks.append([stmt.orelse] if isinstance(stmt.orelse, cst.If) else stmt.orelse.body)
    elif isinstance(stmt, (cst.For, cst.While)):
        blocks.append(stmt.body)
        if stmt.orelse is not None:
            blocks.append(stmt.orelse.body)
    elif isinstance(stmt, cst.With):
        blocks.append(stmt.body)
    elif isinstance(stmt, (cst.Try, cst.TryStar)):
        blocks.append(stmt.body)
        blocks.extend(handler.body for handler in stmt.handlers)
        if stmt.orelse is not None:
            blocks.append(stmt.orelse.body)
        if stmt.finalbody is not None:
            blocks.append(stmt.finalbody.body)
    elif isinstance(stmt, cst.Match):
        blocks.extend(case.body for case in stmt.cases)
    return blocks


def _header_expressions(stmt: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(stmt, (cst.For,)):
        return [stmt.iter]
    if isinstance(stmt, cst.While):
        return [stmt.test]
    if isinstance(stmt, cst.With):
        return [item.item for item in stmt.items]
    return []


def _flatten_class_body(stmt: cst.CSTNode) -> list[cst.CSTNode]:
    """Methods and nested classes, also those under `if` or `try` in the class body."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return [stmt]
    items: list[cst.CSTNode] = []
    for block in _blocks(stmt):
        for inner in _statements(block):
            items.extend(_flatten_class_body(inner))
    return items


def _unpack(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[cst.BaseExpression] = []
        for element in target.elements:
            out.extend(_unpack(element.value))
        return out
    return [target]


def _literal_bool(node: cst.BaseExpression | None) -> bool:
    """Persistence as written; anything but a literal False counts as persistent."""
    return not (isinstance(node, cst.Name) and node.value == "False")


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    return walk.descendants(node, cst.Call, walk.SCOPES)


def _attributes(node: cst.CSTNode) -> list[cst.Attribute]:
    return walk.descendants(node, cst.Attribute, walk.SCOPES)


def extract(
    source: str,
    path: str,
    module: str,
    is_package: bool = False,
    placeholder_imports: Sequence[Sequence[ImportUpdate]] | None = None,
    compiles: bool = False,
    keep: Callable[[cst.Module, Located], object] | None = None,
) -> FileFacts:
    """Facts for one file's source; a file that does not parse, or is nested too deeply to
    parse or walk safely (bufferlint.parsing), yields `error` and no other facts. For
    `placeholder_imports`, see `_Extractor.run`; `compiles`: CPython parsed the file this
    source comes from (all of it, or a part), so its nesting need not be checked again.
    `keep` gets the tree and where the walk found each class name and event node, for the
    fixer (bufferlint.trees)."""
    facts = FileFacts(path=path, module=module)
    nodes: Located | None = None if keep is None else {}
    try:
        if not compiles:
            parsing.check_nesting(source)
        tree = parsing.run_deep(
            _extract, source, facts, is_package, placeholder_imports, nodes, compiles
        )
    except parsing.TooDeep as exc:
        return FileFacts(path, module, error=ParseFailure(exc.line, exc.column, str(exc)))
    except cst.ParserSyntaxError as exc:
        detail = re.sub(r"^parser error: error at \S+ ", "", exc.message.splitlines()[0])
        failure = ParseFailure(exc.raw_line, exc.raw_column + 1, f"SyntaxError: {detail}")
        return FileFacts(path, module, error=failure)
    except (RecursionError, MemoryError) as exc:
        failure = ParseFailure(1, 1, f"too deeply nested to parse ({type(exc).__name__})")
        return FileFacts(path, module, error=failure)
    if keep is not None and nodes is not None:
        keep(tree, nodes)
    return facts


def _extract(
    source: str,
    facts: FileFacts,
    is_package: bool,
    placeholder_imports: Sequence[Sequence[ImportUpdate]] | None,
    nodes: Located | None,
    compiles: bool,
) -> cst.Module:
    tree = parsing.parse_compiled(source) if compiles else cst.parse_module(source)
    _Extractor(source, tree, facts, is_package, nodes).run(placeholder_imports)
    return tree


_PLACEHOLDER = re.compile(r'"""[\r\n]*"""')


def is_placeholder(stmt: cst.CSTNode) -> bool:
    """Whether a top-level statement is one of `partial.reduced`'s strings."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString)
        and _PLACEHOLDER.fullmatch(stmt.body[0].value.value) is not None
    )


# Nodes by the 1-based (line, column) that facts give for them.
Located = dict[tuple[int, int], list[cst.CSTNode]]


def locate(source: str, module_cst: cst.Module, imports: dict[str, str]) -> Located:
    """Where `extract` finds each class name and each event's node in a parsed source (one
    without its imports: `imports` are the file's): the fixer's way back from facts to
    nodes, without LibCST's costly positions. Walks on the large stack, as `extract` does."""
    nodes: Located = {}
    facts = FileFacts(path="", module="", imports=dict(imports))
    extractor = _Extractor(source, module_cst, facts, False, nodes)
    parsing.run_deep(extractor.run)
    return nodes
