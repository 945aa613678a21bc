"""Evaluating a family's statements into Page's nested dict: parameters, block calls,
conditions, repeats and naming. Leaves are `Pending` primitives with their arguments; `check.py`
turns them into Ops once the shapes reaching them are known."""
from __future__ import annotations

import functools
import math
from typing import Any

from ..errors import NetdslError
from ..graph import PRIMITIVES, SEP, Nested, Primitive, fits, kind_of, path_iter, whole
from .evaluate import Frame, bind_arguments, error_at, moved, value_of
from .syntax import (MAX_NUMBER, PRELUDE, Block, Call, Expr, Item, Param, Source, grammar_file,
                     parse_statements)

MAX_REPEAT = 1000      # one item repeated more often than this is a mistake, not a network
MAX_NODES = 20000      # keeps a generated string from eating memory before it is rejected
MAX_STEPS = 10 * MAX_NODES  # items evaluated: bounds the work of expansions that make no nodes


class Pending:
    """A primitive with its evaluated arguments, waiting for the shapes of its inputs."""

    __slots__ = ("primitive", "args", "frame", "inputs_frame", "written_inputs")

    def __init__(self, primitive: Primitive, args: dict, frame: Frame):
        self.primitive, self.args, self.frame = primitive, args, frame
        self.inputs_frame: Frame | None = None  # where `<- ...` is, when it is written
        self.written_inputs: list[str] = []     # as written, for messages


def definitions(statements: list, source: Source, known: dict[str, Block]) -> dict[str, Block]:
    """The `known` blocks and those `statements` define, each checked: not named after a
    primitive or a known block, defined once, no definitions inside it, no parameter listed
    twice."""
    blocks = dict(known)
    mine: set[str] = set()
    for stmt in statements:
        if isinstance(stmt, Block):
            here = source.at(stmt.pos)
            if stmt.name in PRIMITIVES:
                raise NetdslError(f"'{stmt.name}' is a primitive; give the block another name",
                                  here)
            if stmt.name in known:
                raise NetdslError(f"'{stmt.name}' is a built-in block (grammars/{PRELUDE}); "
                                  "give yours another name", here)
            if stmt.name in mine:
                raise NetdslError(f"block '{stmt.name}' is defined twice", here)
            for inner in stmt.body:
                if isinstance(inner, (Block, Param)):
                    kind = "block" if isinstance(inner, Block) else "param"
                    raise NetdslError(f"'{kind}' belongs at the top of a file, not inside a block",
                                      source.at(inner.pos))
            seen = set()
            for formal in stmt.formals:
                if formal.name in seen:
                    raise NetdslError(f"parameter '{formal.name}' is listed twice",
                                      source.at(formal.pos))
                seen.add(formal.name)
            stmt.source = source
            blocks[stmt.name] = stmt
            mine.add(stmt.name)
    return blocks


@functools.lru_cache(maxsize=None)
def prelude() -> dict[str, Block]:
    """The built-in blocks (stage, head, conv_bn, residual), parsed once per process."""
    source = Source(PRELUDE, grammar_file(PRELUDE))
    return definitions(parse_statements(source), source, {})


def bind_parameters(statements: list, source: Source, params: dict[str, Any]) -> dict[str, Any]:
    """The value of every `param` statement, evaluated in order, `params` overriding their
    defaults."""
    env: dict[str, Any] = {}
    declared = [s for s in statements if isinstance(s, Param)]
    names = [p.name for p in declared]
    unknown = [name for name in params if name not in names]
    if unknown:
        have = ", ".join(names) if names else "no parameters"
        raise NetdslError(f"{source.name}: unknown parameter '{unknown[0]}' "
                          f"(this network has: {have})")
    for param in declared:
        here = ((source, param.pos, param.name),)
        if param.name in env:
            raise error_at(f"parameter '{param.name}' is declared twice", here)
        default = value_of(param.expr, env, here)
        env[param.name] = _check_binding(param.name, params[param.name], default, here) \
            if param.name in params else default
    return env


def _check_binding(name: str, value: Any, default: Any, frame: Frame) -> Any:
    # A whole parameter takes any number here: the primitive given it names what it must be.
    kind = "switch" if kind_of(default) == "switch" else "number"
    if not fits(value, kind):
        words = "true or false" if kind == "switch" else "a number"
        raise error_at(f"parameter '{name}' takes {words}, got {value!r}", frame)
    if isinstance(value, float) and not math.isfinite(value):
        raise error_at(f"parameter '{name}' must be finite, got {value!r}", frame)
    if not isinstance(value, bool) and abs(value) > MAX_NUMBER:  # the text could not say it
        raise error_at(f"parameter '{name}' must be at most 2**62 in size, as any number in the "
                       f"language, got {value!r}", frame)
    return value


class Expander:
    """Expands items into nodes: one per binding of a family (it counts the nodes made)."""

    def __init__(self, blocks: dict[str, Block], env: dict[str, Any]):
        self.blocks = blocks
        self.globals = env
        self.node_count = 0
        self.steps = 0
        # (id of a group of nodes, primitive) -> the last number given to an unlabelled node of
        # that primitive there: naming relu, relu_1, relu_2... stays linear in the node count.
        self.last_number: dict[tuple[int, str], int] = {}
        # Each block's defaults: constants, or expressions of the file's parameters evaluated
        # where the block is defined, once per binding, for every block: one that fails fails
        # whether or not the block is called.
        self.defaults = {block.name: {**block.constant_defaults, **{
            formal.name: value_of(formal.default, env, ((block.source, formal.pos, block.name),))
            for formal in block.computed_defaults}} if block.computed_defaults
            else block.constant_defaults for block in blocks.values()}

    def call_block(self, block: Block, call: Call, env: dict, frame: Frame) -> Nested:
        if any(callee == block.name for _, _, callee in frame[:-1]):
            raise error_at(f"block '{block.name}' calls itself; recursion is not supported", frame)
        args = bind_arguments(block.name, block.params, block.switches, call, env, frame)
        for name, value in args.items():
            default = block.constant_defaults.get(name)
            if default is not None and not isinstance(value, Expr) and (
                    isinstance(default, bool) != isinstance(value, bool)):
                kind = "a switch (true or false)" if name in block.switches else "a number"
                raise error_at(f"{block.name}: '{name}' is {kind}, got {value!r}", frame)
        for name, value in args.items():
            if isinstance(value, Expr):  # not given: the default, evaluated once per binding
                args[name] = self.defaults[block.name][name]
        return self.body(block.body, {**self.globals, **args}, block.source, frame)

    def body(self, statements: list, env: dict, source: Source, frame: Frame,
             nodes: Nested | None = None) -> Nested:
        nodes = {} if nodes is None else nodes
        for stmt in statements:
            if isinstance(stmt, Item):
                self.item(stmt, env, source, frame, nodes)
        return nodes

    def item(self, item: Item, env: dict, source: Source, frame: Frame, nodes: Nested) -> None:
        call = item.call
        here = frame + ((source, call.pos, call.name),)
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise error_at(f"expanding the network takes more than {MAX_STEPS:,} steps "
                           "(repeats of repeats?)", here)
        if item.condition is not None:
            wanted = value_of(item.condition, env, here)
            if not isinstance(wanted, bool):
                raise error_at(f"'if' needs true or false, got {wanted!r}", here)
            if not wanted:
                return
        count = 1
        if item.repeat is not None:
            try:
                count = whole(value_of(item.repeat, env, here), "repeat count", 0)
            except NetdslError as e:
                raise error_at(e.message, here) from None
            if count > MAX_REPEAT:
                raise error_at(f"repeat count {count} is more than {MAX_REPEAT}", here)
        primitive = PRIMITIVES.get(call.name)
        block = self.blocks.get(call.name)
        label = item.label
        if primitive is None and block is None:
            if label is not None:
                raise error_at(f"unknown block '{call.name}'", here)
            # A stage: `layer1(128, pool)` is `layer1: stage(128, pool)`.
            label, block = call.name, self.blocks["stage"]
            here = frame + ((source, call.pos, "stage"),)
        for i in range(count):
            name = None if label is None else label if i == 0 else f"{label}_{i}"
            if primitive is not None:
                self.add_primitive(primitive, item, name, env, here, nodes)
            else:
                sub = self.call_block(block, call, env, here)
                self.add_block(sub, item, name, source, here, nodes)

    def add_primitive(self, primitive: Primitive, item: Item, name: str | None, env: dict,
                      frame: Frame, nodes: Nested) -> None:
        args = bind_arguments(primitive.name, primitive.params, primitive.switches, item.call, env,
                         frame)
        leaf = Pending(primitive, args, frame)
        if name is None:
            key = (id(nodes), primitive.name)
            n = self.last_number.get(key, -1)
            name = primitive.name
            while name in nodes:
                n += 1
                name = f"{primitive.name}_{n}" if n else primitive.name
            self.last_number[key] = n
        self.put(nodes, name, leaf, frame, item.label_pos)
        if item.inputs is not None:
            leaf.inputs_frame = moved(frame, item.inputs_pos)
            leaf.written_inputs = list(item.inputs)
            nodes[name] = (leaf, list(item.inputs))

    def add_block(self, sub: Nested, item: Item, name: str | None, source: Source,
                  frame: Frame, nodes: Nested) -> None:
        if item.inputs is not None:
            inputs_frame = moved(frame, item.inputs_pos)
            first, leaf = next(path_iter(sub), (None, None))
            if first is None:
                raise error_at(f"{item.call.name} has no nodes to take the inputs", inputs_frame)
            group = sub
            for part in first[:-1]:
                group = group[part]
            if isinstance(leaf, tuple):
                raise error_at(f"the first node of {item.call.name} ('{SEP.join(first)}') "
                               "already names its inputs", inputs_frame)
            # The refs are relative to this group; the leaf sits deeper.
            climb = "../" * (len(first) - 1 + (name is not None))
            leaf.inputs_frame = inputs_frame
            leaf.written_inputs = list(item.inputs)
            group[first[-1]] = (leaf, [climb + ref for ref in item.inputs])
        if name is not None:
            self.put(nodes, name, sub, frame, item.label_pos)
        else:
            for key, value in sub.items():
                self.put(nodes, key, value, frame)

    def put(self, nodes: Nested, name: str, value: Any, frame: Frame,
            label_pos: tuple[int, int] | None = None) -> None:
        if name in nodes:
            raise error_at(f"the name '{name}' is already used here; give this node another label",
                           moved(frame, label_pos) if label_pos else frame)
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise error_at(f"the network has more than {MAX_NODES} nodes", frame)
        nodes[name] = value
