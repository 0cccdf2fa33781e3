"""Which class a dotted name refers to, across modules: the one resolution algorithm.

The class model runs it over parsed facts (bufferlint.model), the prefiltered run over
the prefilter's header index before anything is parsed (bufferlint.choosing); each
provides the `Binds` view of a module. A view may answer with several classes (the
header index over-approximates), so answers are tuples, empty when nothing is found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Binds(Protocol[T_co]):
    """What one module binds at top level."""

    @property
    def name(self) -> str:
        """The module's dotted name."""
        ...

    def classes(self, dotted: str) -> tuple[T_co, ...]:
        """The module's own classes that `dotted` (`Outer.Inner` for a nested one) names."""
        ...

    def imports(self, local: str) -> Sequence[str]:
        """The absolute names that its imports bind `local` to."""
        ...

    def star_imports(self) -> Sequence[str]:
        """The absolute modules it imports `*` from, in order."""
        ...


class Resolver(Generic[T]):
    """Python's lookup of dotted names. `module` gives a module's view (None: no such
    module), `known` a class already known under an absolute name (it spares looking
    for modules that a nested class's name would otherwise make up). `memo` holds each
    absolute name's answer; an import cycle answers nothing, and so does a first name
    that a module's lookup of it comes back to: through a star import of a missing
    module, `pkg.missing.X` falls back to `pkg` and would grow without end."""

    def __init__(
        self,
        module: Callable[[str], Binds[T] | None],
        known: Callable[[str], tuple[T, ...]],
        memo: dict[str, tuple[T, ...]] | None = None,
    ) -> None:
        self.module = module
        self.known = known
        self.memo: dict[str, tuple[T, ...]] = {} if memo is None else memo
        self._open: set[tuple[str, str]] = set()  # (module, first name) lookups under way

    def resolve(self, name: str) -> tuple[T, ...]:
        """What the absolute dotted `name` refers to."""
        found = self.known(name)
        if found:
            return found
        if name in self.memo:
            return self.memo[name]
        self.memo[name] = ()
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            space = self.module(".".join(parts[:cut]))
            if space is not None:  # as in Python, the longest module prefix decides
                found = self.lookup(space, ".".join(parts[cut:]))
                break
        self.memo[name] = found
        return found

    def lookup(self, space: Binds[T], dotted: str) -> tuple[T, ...]:
        """`dotted` as module `space` binds it: its own class, else through its import of
        the first name, else through its star imports (the first that has it)."""
        found = space.classes(dotted)
        if found:
            return found
        head, _, rest = dotted.partition(".")
        opened = (space.name, head)
        if opened in self._open:
            return ()
        self._open.add(opened)
        try:
            return self._through_imports(space, dotted, head, rest)
        finally:
            self._open.discard(opened)

    def _through_imports(self, space: Binds[T], dotted: str, head: str, rest: str) -> tuple[T, ...]:
        tail = f".{rest}" if rest else ""
        itself = f"{space.name}.{dotted}"  # `from pkg import X` in pkg: no import of X
        targets = [target for target in space.imports(head) if target != itself]
        if targets:
            return tuple(c for target in targets for c in self.resolve(target + tail))
        for star in space.star_imports():
            found = self.resolve(f"{star}.{dotted}")
            if found:
                return found
        return ()

    def written(self, space: Binds[T], dotted: str, scopes: Sequence[str] = ()) -> tuple[T, ...]:
        """`dotted` as written in a class statement of `space` nested in classes `scopes`:
        the innermost enclosing scope's class first, then as the module binds it, then,
        if it imports no such first name, as an absolute name."""
        for cut in range(len(scopes), 0, -1):
            found = space.classes(".".join([*scopes[:cut], dotted]))
            if found:
                return found
        found = self.lookup(space, dotted)
        if found or space.imports(dotted.partition(".")[0]):
            return found
        return self.resolve(dotted)
