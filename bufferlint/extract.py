"""Extracts a file's facts with LibCST, without its metadata providers: positions come
from a forward text search for each node's first line (bufferlint.locator), and method
bodies are walked over their nodes' fields (bufferlint.events, bufferlint.walk), because
LibCST's own visitor rebuilds every node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import libcst as cst

from bufferlint import blocks, parsing
from bufferlint.conventions import DISPATCHERS
from bufferlint.events import DispatchWalker, MethodWalker
from bufferlint.facts import (
    ClassFacts,
    FileFacts,
    ImportUpdate,
    MethodFacts,
    ParseFailure,
    resolve_relative,
)
from bufferlint.locator import Locator
from bufferlint.syntax import dotted, qualify

# Nodes by the 1-based (line, column) that facts give for them.
Located = dict[tuple[int, int], list[cst.CSTNode]]


class Extractor:
    """Walks one module for its imports and classes, and each method for its events."""

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
        self.locate = Locator(source, module_cst)
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
        for stmt in blocks.statements(body):
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
                for block in blocks.blocks(stmt):
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
        for stmt in blocks.statements(node.body):
            for item in blocks.class_body_items(stmt):
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
        method.params = tuple(
            p.name.value
            for p in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params)
        )[1 if kind != "static" else 0 :]
        if kind != "static" and params:
            arguments = {
                p.name.value
                for p in (
                    *node.params.posonly_params,
                    *node.params.params,
                    *node.params.kwonly_params,
                )
            }
            walker = MethodWalker(self, method, params[0].name.value, arguments)
            walker.walk(node.body, ())
            method.children, method.descends = walker.children.found()
            if node.name.value in DISPATCHERS and kind == "method" and len(params) > 1:
                owner_name = params[0].name.value
                module = DispatchWalker(self, method, params[1].name.value, arguments, owner_name)
                module.walk(node.body, ())
        else:
            self.walk_scope(node.body, f"{owner.name}.{node.name.value}.<locals>.")
        target = owner.setters if kind == "setter" else owner.methods
        target.setdefault(node.name.value, method)


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
    `placeholder_imports`, see `Extractor.run`; `compiles`: CPython parsed the file this
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
    Extractor(source, tree, facts, is_package, nodes).run(placeholder_imports)
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


def locate(source: str, module_cst: cst.Module, imports: dict[str, str]) -> Located:
    """Where `extract` finds each class name and each event's node in a parsed source (one
    without its imports: `imports` are the file's): the fixer's way back from facts to
    nodes, without LibCST's costly positions. Walks on the large stack, as `extract` does."""
    nodes: Located = {}
    facts = FileFacts(path="", module="", imports=dict(imports))
    extractor = Extractor(source, module_cst, facts, False, nodes)
    parsing.run_deep(extractor.run)
    return nodes
