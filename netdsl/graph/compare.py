"""What differs between two networks, node by node, matched by path."""
from __future__ import annotations

from dataclasses import dataclass

from .nested import Graph


@dataclass(frozen=True)
class Change:
    """One node that differs: `kind` is added (only in the second network), removed (only in
    the first) or changed (its layer or its inputs differ); `before`/`after` describe it."""

    kind: str
    path: str
    before: str = ""
    after: str = ""

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        if self.kind == "changed":
            return f"{sign} {self.path}: {self.before} -> {self.after}"
        return f"{sign} {self.path}: {self.after or self.before}"


def describe(graph: Graph, path: str) -> str:
    op, inputs = graph[path]
    return "the input" if op is None else f"{op!r} <- {', '.join(inputs)}"


def diff(first: Graph, second: Graph) -> list[Change]:
    """The nodes removed from `first`, changed, and added in `second`, in graph order."""
    changes = [Change("removed", path, before=describe(first, path))
               for path in first if path not in second]
    for path in second:
        if path not in first:
            changes.append(Change("added", path, after=describe(second, path)))
        elif first[path] != second[path]:
            changes.append(Change("changed", path, describe(first, path),
                                  describe(second, path)))
    return changes
