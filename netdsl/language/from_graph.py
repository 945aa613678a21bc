"""A resolved graph -> DSL text that parses back to the same graph: what a search algorithm that
builds graphs (or Page-style nested dicts) prints instead of writing DSL itself.

Each node becomes a primitive call labelled with its name; each path prefix becomes a call of a
block, the built-in one (stage, residual, conv_bn, head) wherever the nodes are exactly what it
makes, so a ResNet-9 prints as its one-liner, else a block written for it (shared by prefixes
whose nodes are alike). A built-in block's arguments are read off its nodes by the traces
expanding the prelude shows them to leave (`_argument_traces`), and a primitive's as its record
names them: no names of the prelude's nodes, and no branch per primitive, are written here.
Inputs are written (`<- ref`) only where a node does not read the node before it. The text is
checked by parsing it back (`family.graph_to_text`).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterator

from ..errors import NetdslError
from ..graph import INPUT, OPS, PRIMITIVES, REQUIRED, SEP, Graph, Op, Shape, ShapedGraph
from ..graph.nested import INPUT_SIZES, prefix_tree, relative
from .expand import prelude
from .printer import INDENT, literal, written_call

BUILTINS = ("stage", "residual", "conv_bn", "head")  # the prelude's blocks, tried in this order
SPLICED = ("head", "conv_bn")  # also tried on runs of nodes, as a call without a label makes them


# The graph a line of DSL makes for inputs of a shape, None when it does not bind: the
# language's own (`family.graph_of`), given by the caller so that this module imports no parser.
Expand = Callable[[str, Shape], "Graph | None"]


def candidate_texts(graph: ShapedGraph, expand: Expand) -> Iterator[str]:
    """DSL texts that may parse back to `graph` (shaped: `graph.nested.shaped`), the likelier
    first; `family.graph_to_text` keeps the first that does (`same_graph`). The built-in blocks
    are learnt by expanding calls of them with `expand`."""
    for use_builtins in (True, False):  # a built-in that fits in shape but not in place: none
        yield _Writer(graph, use_builtins, expand).text()


def same_graph(parsed: Graph, graph: Graph) -> bool:
    """Same paths, inputs and layers; a layer's arguments compared where the graph states them
    (a hand-built Op may leave torch's defaults out; `inplace` follows from the readers)."""
    if set(parsed) != set(graph):
        return False
    for path, (op, inputs) in graph.items():
        other, other_inputs = parsed[path]
        if list(inputs) != list(other_inputs) or (op is None) != (other is None):
            return False
        if op is not None and not _same_op(op, other):
            return False
    return True


def _same_op(given: Op, made: Op) -> bool:
    mine = made.kwargs
    return given.type == made.type and all(
        mine.get(key, value) == value for key, value in given.args if key != "inplace")


# ---- an Op as a primitive call ------------------------------------------------------------------

def primitive_call(op: Op, input_shapes: list[Shape]) -> str | None:
    """The shortest call of `op`'s primitive that makes `op` on inputs of `input_shapes`, or
    None when none does."""
    primitive = OPS.get(op.type)
    if primitive is None:
        return None
    defaults = dict(primitive.params)

    def makes(args: dict[str, Any]) -> bool:
        full = {name: args.get(name, default) for name, default in primitive.params}
        if any(value is REQUIRED for value in full.values()):
            return False
        try:
            return _same_op(op, primitive.infer(full, input_shapes, exclusive=False))
        except NetdslError:
            return False
    for args in primitive.dsl_candidates(op.kwargs):
        if not makes(args):
            continue
        for name in list(args):  # leave out what the defaults give anyway
            if defaults[name] is not REQUIRED and makes({k: v for k, v in args.items()
                                                         if k != name}):
                del args[name]
        return call_with(primitive.name, primitive.params, args)
    return None


def call_with(name: str, params: tuple, args: dict[str, Any]) -> str:
    """The call of `name`, whose parameters are `params` ((name, default or REQUIRED)), with
    the values `args` as DSL text: required values by position, true switches as bare names,
    the rest as keywords."""
    parts = []
    for param, default in params:
        if param not in args:
            continue
        value = args[param]
        if default is REQUIRED:
            parts.append(literal(value))
        elif isinstance(default, bool) and value is True:
            parts.append(param)
        else:
            parts.append(f"{param}={literal(value)}")
    return written_call(name, parts)


# ---- the built-in blocks ------------------------------------------------------------------------

def _guess(block: str, nodes: dict[str, tuple[Op | None, list[str]]], expand: Expand
           ) -> dict[str, Any] | None:
    """The arguments of built-in `block` that would make `nodes` (relative paths), read off
    them as `_argument_traces` says; None when they cannot be its."""
    top = {path.split(SEP)[0] for path in nodes}
    args = {}
    for name, how, *where in _argument_traces(block, expand):
        if how == "argument":
            path, key = where
            op = nodes.get(path, (None,))[0]
            value = None if op is None else op.kwargs.get(key)
            if value is None:
                return None
        elif how == "switch":
            value = any(marker in top for marker in where[0])
        else:  # a count of repeated nodes: extra, extra_1, extra_2...
            value = sum(bool(re.fullmatch(rf"{re.escape(where[0])}(_\d+)?", n)) for n in top)
        args[name] = value
    return args


PROBE_SIZE = 32  # height and width of the images the built-in blocks are expanded on to learn


@functools.lru_cache(maxsize=None)
def _argument_traces(block: str, expand: Expand) -> tuple[tuple, ...]:
    """The trace each argument of built-in `block` leaves in the nodes it makes, so that it
    reads back off them, learnt by expanding the prelude's definition with distinct probe
    values (not written here by name): a number is the constructor argument of the first node
    that carries it, a switch whether a node it adds is there, a count how many nodes of the
    name it repeats are there."""
    params = _params(block)
    whole, fractional = iter((11, 13, 17, 19, 23)), iter((0.37, 0.41, 0.43))
    base = {name: next(fractional) if isinstance(default, float) else next(whole)
            for name, default in params if not isinstance(default, bool)}
    made = _made(block, base, expand)
    traces: list[tuple] = []  # (name, how, where...): `where` as long as `how` needs
    for name, default in params:
        if isinstance(default, bool):
            on = _made(block, {**base, name: True}, expand)
            off = _made(block, {**base, name: False}, expand)
            traces.append((name, "switch", tuple(sorted(_tops(on) - _tops(off)))))
            continue
        hit = next(((path, key) for path, op in made.items() if op is not None
                    for key, value in op.args
                    if key not in INPUT_SIZES and not isinstance(value, bool)
                    and value == base[name]), None)
        if hit is not None:
            traces.append((name, "argument", *hit))
            continue
        more = _made(block, {**base, name: 2}, expand)
        fewer = _made(block, {**base, name: 0}, expand)
        repeated = [top for top in dict.fromkeys(p.split(SEP)[0] for p in more)
                    if top not in _tops(fewer)]
        traces.append((name, "count", repeated[0]))
    return tuple(traces)


def _params(block: str) -> tuple[tuple[str, Any], ...]:
    """(name, default or REQUIRED) of each parameter of built-in `block`."""
    definition = prelude()[block]
    return tuple((name, definition.constant_defaults.get(name, REQUIRED))
                 for name, _ in definition.params)


def _made(block: str, args: dict[str, Any], expand: Expand) -> dict[str, Op | None]:
    """The nodes of a labelled call of `block` with `args` (relative paths -> Op), expanded on
    probe images of 3 channels, or of as many as a whole-number argument (a block whose
    output is added to its input)."""
    call = f"x: {call_with(block, _params(block), args)}"
    for channels in (3, *(v for v in args.values() if isinstance(v, int)
                          and not isinstance(v, bool))):
        made = _expansion(call, (channels, PROBE_SIZE, PROBE_SIZE), expand)
        if made is not None:
            return {path.removeprefix("x/"): op for path, op, _ in made}
    raise NetdslError(f"the built-in block {block} does not expand on probe images")


def _tops(nodes: dict) -> set[str]:
    return {path.split(SEP)[0] for path in nodes}


@functools.lru_cache(maxsize=None)
def _spliced_names(block: str, expand: Expand) -> tuple[str, ...]:
    """The names a call of `block` without a label puts where it is called (conv_bn's conv, bn,
    relu), in order, from its expansion."""
    args = {name: 11 for name, default in _params(block) if default is REQUIRED}
    call = call_with(block, _params(block), args)
    made = _expansion(call, (3, PROBE_SIZE, PROBE_SIZE), expand)
    if made is None:
        raise NetdslError(f"the built-in block {block} does not expand on probe images")
    return tuple(dict.fromkeys(path.split(SEP)[0] for path, _, _ in made))


@functools.lru_cache(maxsize=4096)
def _expansion(call: str, input_shape: Shape, expand: Expand) -> tuple | None:
    """The nodes `call` makes (relative paths -> (Op, inputs); the caller's input is `INPUT`),
    as a hashable tuple, or None when it does not bind."""
    graph = expand(call, input_shape)
    if graph is None:
        return None
    return tuple((path, op, tuple(inputs)) for path, (op, inputs) in graph.items()
                 if path != INPUT)


def _builtin_call(block: str, nodes: dict, label: str | None, input_shape: Shape,
                  external: str, expand: Expand) -> str | None:
    """A call of `block` (labelled `label`, or spliced when None) that makes exactly `nodes`
    (relative paths; their outside input is `external`), or None."""
    args = _guess(block, nodes, expand)
    if args is None:
        return None
    params = _params(block)
    defaults = dict(params)
    args = {k: v for k, v in args.items() if defaults[k] is REQUIRED or v != defaults[k]}
    call = call_with(block, params, args)
    made = _expansion(f"x: {call}" if label else call, tuple(input_shape), expand)
    if made is None or len(made) != len(nodes):
        return None
    prefix = "x/" if label else ""
    for path, op, inputs in made:
        path = path.removeprefix(prefix)
        wanted = [external if i == INPUT else i.removeprefix(prefix) for i in inputs]
        have = nodes.get(path)
        if have is None or have[0] is None or not _same_op(have[0], op) or list(
                have[1]) != wanted:
            return None
    if label is None:
        return call
    if block == "stage" and label not in _RESERVED and not label.endswith("_block"):
        return label + call[len(block):]  # `layer1(16, pool)` is `layer1: stage(16, pool)`
    return f"{label}: {call}"


_RESERVED = set(PRIMITIVES) | set(BUILTINS)


# ---- writing ------------------------------------------------------------------------------------

class _Writer:
    def __init__(self, graph: ShapedGraph, use_builtins: bool, expand: Expand):
        self.graph, self.shapes, self.use_builtins = graph, graph.shapes, use_builtins
        self.expand = expand
        self.blocks: dict[tuple[str, ...], str] = {}  # body -> block name
        self.definitions: list[str] = []
        nodes = [path for path in graph if path != INPUT]
        self.leaves = set(nodes)
        self.children = prefix_tree(nodes)  # prefix -> its children (leaf or prefix paths)
        # prefix or leaf -> the node under it that comes last in the graph's order: what reads
        # on after the prefix's call
        self.last_leaf: dict[str, str] = {}
        for path in nodes:
            parts = path.split(SEP)
            for depth in range(1, len(parts) + 1):
                self.last_leaf[SEP.join(parts[:depth])] = path

    def text(self) -> str:
        body = self.body("", first_reads_call=False)
        return "\n".join([*self.definitions, *body]) + "\n"

    def first_leaf(self, prefix: str) -> str:
        while prefix not in self.leaves:
            prefix = self.children[prefix][0]
        return prefix

    def nodes_under(self, prefix: str, names: list[str]) -> dict:
        """The nodes under `prefix`/name for `names`, relative to `prefix`."""
        base = prefix + SEP if prefix else ""
        out = {}
        for path, (op, inputs) in self.graph.items():
            rel = path[len(base):] if path.startswith(base) else None
            if rel is not None and rel.split(SEP)[0] in names:
                out[rel] = (op, [i[len(base):] if i.startswith(base) and
                                 i[len(base):].split(SEP)[0] in names else "@" + i
                                 for i in inputs])
        return out

    def body(self, prefix: str, first_reads_call: bool) -> list[str]:
        """The items of `prefix`'s children; the first takes its input from the call (in a
        block's body) or from the network's input."""
        lines = []
        previous = INPUT
        names = [child.rsplit(SEP, 1)[-1] for child in self.children[prefix]]
        i = 0
        while i < len(names):
            child = SEP.join(filter(None, (prefix, names[i])))
            first = self.first_leaf(child)
            inputs = self.graph[first][1]
            implicit = (i == 0 and first_reads_call) or list(inputs) == [previous]
            item, taken = self.item(prefix, names, i)
            if not implicit:
                item += " <- " + ", ".join(relative(source, prefix) for source in inputs)
            lines.append(item)
            previous = self.last_leaf[SEP.join(filter(None, (prefix, names[i + taken - 1])))]
            i += taken
        return lines

    def item(self, prefix: str, names: list[str], i: int) -> tuple[str, int]:
        """The item for child `i` of `prefix` (or a run of children from it, when a built-in
        block spliced in makes them), and how many children it covers."""
        name = names[i]
        path = SEP.join(filter(None, (prefix, name)))
        external = self.graph[self.first_leaf(path)][1]
        in_shape = self.shapes[external[0]] if len(external) == 1 else None
        if self.use_builtins and in_shape is not None:
            for block in SPLICED:
                made = _spliced_names(block, self.expand)
                if tuple(names[i:i + len(made)]) != made:
                    continue
                call = _builtin_call(block, self.nodes_under(prefix, list(made)), None,
                                     in_shape, "@" + external[0], self.expand)
                if call is not None:
                    return call, len(made)
        if path in self.leaves:
            op, inputs = self.graph[path]
            call = primitive_call(op, [self.shapes[s] for s in inputs])
            if call is None:
                raise NetdslError(f"node '{path}': the language has no primitive for {op!r}")
            return (call if call == name else f"{name}: {call}"), 1
        if self.use_builtins and in_shape is not None:
            nodes = self.nodes_under(prefix, [name])
            nodes = {rel[len(name) + 1:]: (op, [i[len(name) + 1:] if not i.startswith("@")
                                                 else i for i in inputs])
                     for rel, (op, inputs) in nodes.items()}
            for block in BUILTINS:
                call = _builtin_call(block, nodes, name, in_shape, "@" + external[0],
                                     self.expand)
                if call is not None:
                    return call, 1
        body = tuple(self.body(path, first_reads_call=True))
        if body not in self.blocks:
            block_name = unique(f"{name}_block", {*PRIMITIVES, *BUILTINS, "stage",
                                                  *self.blocks.values()})
            self.blocks[body] = block_name
            self.definitions += [f"block {block_name}() {{", *(INDENT + line for line in body),
                                 "}"]
        return f"{name}: {self.blocks[body]}", 1


def unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"
