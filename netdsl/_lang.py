"""DSL text -> Page's nested dict of Ops.

Three steps: lark parses the text into a small syntax tree (`_Syntax`); `_Expander` evaluates it
(parameters, block calls, conditions, repeats) into a nested dict of pending leaves; `_infer`
walks the flattened graph in execution order, checks every layer against the shapes reaching
it and turns each pending leaf into an `Op`. DSL text is data: expressions are evaluated by the
small tree below, never by eval/exec.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import lark

from .errors import Location, NetdslError
from .graph import INPUT, SEP, Nested, execution_order, path_iter, pipeline, resolve
from .ops import PRIMITIVES, REQUIRED, Op, Primitive, Shape, format_shape, output_shape, whole

PRELUDE = "prelude.net"
MAX_REPEAT = 1000      # one item repeated more often than this is a mistake, not a network
MAX_NODES = 20000      # keeps a generated string from eating memory before it is rejected


@dataclass(frozen=True)
class Source:
    name: str
    text: str

    def at(self, pos: tuple[int, int]) -> Location:
        return Location(self.name, self.text, pos[0], pos[1])


# ---- syntax -------------------------------------------------------------------------------------

class _Expr:
    __slots__ = ("pos",)


class _Const(_Expr):
    __slots__ = ("value",)

    def __init__(self, value, pos):
        self.value, self.pos = value, pos


class _Name(_Expr):
    __slots__ = ("name",)

    def __init__(self, name, pos):
        self.name, self.pos = name, pos


class _Unary(_Expr):
    __slots__ = ("op", "operand")

    def __init__(self, op, operand, pos):
        self.op, self.operand, self.pos = op, operand, pos


class _Binary(_Expr):
    __slots__ = ("op", "left", "right")

    def __init__(self, op, left, right):
        self.op, self.left, self.right, self.pos = op, left, right, left.pos


@dataclass
class _Arg:
    name: str | None  # None: positional
    expr: _Expr
    pos: tuple[int, int]


@dataclass
class _Call:
    name: str
    args: list[_Arg]
    pos: tuple[int, int]


@dataclass
class _Item:
    label: str | None
    label_pos: tuple[int, int] | None
    call: _Call
    repeat: _Expr | None
    condition: _Expr | None
    inputs: list[str] | None
    inputs_pos: tuple[int, int] | None


@dataclass
class _Param:
    name: str
    expr: _Expr
    pos: tuple[int, int]


@dataclass
class _Formal:
    name: str
    default: _Expr | None
    pos: tuple[int, int]


@dataclass
class _Block:
    name: str
    formals: list[_Formal]
    body: list
    pos: tuple[int, int]
    source: Source = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self):
        self.params = tuple((f.name, REQUIRED if f.default is None else f.default)
                            for f in self.formals)
        self.constant_defaults = {f.name: f.default.value for f in self.formals
                                  if isinstance(f.default, _Const)}
        self.switches = frozenset(name for name, value in self.constant_defaults.items()
                                  if isinstance(value, bool))


def _pos(token) -> tuple[int, int]:
    return (token.line, token.column)


class _Syntax(lark.Transformer):
    """Builds the syntax tree while lark parses (LALR with an inline transformer)."""

    def start(self, children):
        return [c for c in children if c is not None]

    def param_def(self, c):
        return _Param(str(c[1]), c[2], _pos(c[1]))

    def block_def(self, c):
        formals = [x for x in c[2:] if isinstance(x, _Formal)]
        body = [x for x in c[2:] if x is not None and not isinstance(x, _Formal)]
        return _Block(str(c[1]), formals, body, _pos(c[1]))

    def formal(self, c):
        return _Formal(str(c[0]), c[1], _pos(c[0]))

    def item(self, c):
        label, call, repeat, condition, inputs = c
        refs, where = (None, None) if inputs is None else inputs
        return _Item(None if label is None else str(label), None if label is None else _pos(label),
                     call, repeat, condition, refs, where)

    def call(self, c):
        return _Call(str(c[0]), [a for a in c[1:] if a is not None], _pos(c[0]))

    def positional(self, c):
        return _Arg(None, c[0], c[0].pos)

    def keyword(self, c):
        return _Arg(str(c[0]), c[1], _pos(c[0]))

    def repeat(self, c):
        return c[0]

    def condition(self, c):
        return c[1]

    def inputs(self, c):
        return [str(t) for t in c[1:]], _pos(c[0])

    def number(self, c):
        text = str(c[0])
        value = int(text) if text.isdigit() else float(text)
        return _Const(value, _pos(c[0]))

    def true(self, c):
        return _Const(True, _pos(c[0]))

    def false(self, c):
        return _Const(False, _pos(c[0]))

    def name(self, c):
        return _Name(str(c[0]), _pos(c[0]))

    def neg(self, c):
        return _Unary("-", c[0], c[0].pos)

    def not_(self, c):
        return _Unary("not", c[1], _pos(c[0]))

    def add(self, c):
        return _Binary("+", *c)

    def sub(self, c):
        return _Binary("-", *c)

    def mul(self, c):
        return _Binary("*", *c)

    def div(self, c):
        return _Binary("/", *c)

    def floordiv(self, c):
        return _Binary("//", *c)


class _ParenNewlines:
    """Post-lexer: line breaks inside parentheses are not separators."""

    always_accept = ("_NEWLINE",)

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type == "_LPAR":
                depth += 1
            elif token.type == "_RPAR":
                depth = max(depth - 1, 0)
            elif token.type == "_NEWLINE" and depth:
                continue
            yield token


def _grammar_file(name: str) -> str:
    return resources.files("netdsl.grammars").joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _parser() -> lark.Lark:
    return lark.Lark(_grammar_file("netdsl.lark"), parser="lalr", lexer="contextual",
                     postlex=_ParenNewlines(), transformer=_Syntax(), maybe_placeholders=True)


_PLAIN_TERMINALS = {"NAME": "a name", "NUMBER": "a number", "REF": "a node path",
                    "_NEWLINE": "a line break", "$END": "the end of the text"}


def _describe_terminal(name: str) -> str:
    if name in _PLAIN_TERMINALS:
        return _PLAIN_TERMINALS[name]
    pattern = _parser().get_terminal(name).pattern
    return f"'{pattern.value}'"


def _syntax(source: Source) -> list:
    try:
        return _parser().parse(source.text)
    except lark.UnexpectedCharacters as e:
        char = source.text[e.pos_in_stream] if e.pos_in_stream < len(source.text) else ""
        raise NetdslError(f"unexpected character {char!r}", source.at((e.line, e.column))) from None
    except lark.UnexpectedToken as e:
        token = e.token
        if token.type == "$END":
            found = "the end of the text"
        elif token.type == "_NEWLINE":
            found = "a line break"
        else:
            found = f"'{token}'"
        names = set(e.expected)
        if "_RPAR" in names:  # inside parentheses, where line breaks are dropped
            names.discard("_NEWLINE")
        expected = sorted({_describe_terminal(t) for t in names})
        hint = ", ".join(expected) if len(expected) <= 8 else ", ".join(expected[:8]) + ", ..."
        line, column = _end(source) if token.type == "$END" else (token.line, token.column)
        message = f"unexpected {found}" if found.startswith("'") else f"{found} came too early"
        raise NetdslError(f"{message}; expected {hint}", source.at((line, column))) from None
    except lark.UnexpectedInput as e:  # pragma: no cover -- other lark errors carry a position
        raise NetdslError("cannot parse this text", source.at((e.line, e.column))) from None


def _end(source: Source) -> tuple[int, int]:
    """Just after the last character that is not white space."""
    lines = source.text.rstrip().split("\n")
    return (len(lines), len(lines[-1]) + 1)


@functools.lru_cache(maxsize=None)
def _prelude() -> dict[str, _Block]:
    source = Source(PRELUDE, _grammar_file(PRELUDE))
    return _Expander.definitions(_syntax(source), source, {})


# ---- expansion ----------------------------------------------------------------------------------

# The calls that led to a place: (text, (line, column), callee) for each, outermost first.
# Locations are made from it only when an error is raised: parsing is on a search's hot path.
Frame = tuple[tuple[Source, tuple[int, int], str], ...]


def _moved(frame: Frame, pos: tuple[int, int]) -> Frame:
    """`frame` with its innermost place moved to `pos` in the same text."""
    source, _, callee = frame[-1]
    return frame[:-1] + ((source, pos, callee),)


def _fail(message: str, frame: Frame) -> NetdslError:
    """An error located at the innermost call in the user's text; deeper calls become a note."""
    user = [i for i, (source, _, _) in enumerate(frame) if source.name != PRELUDE]
    at = user[-1] if user else len(frame) - 1
    deeper = [callee for _, _, callee in frame[at + 1:]]
    notes = (f"    (inside {' -> '.join(deeper)})",) if deeper else ()
    location = frame[at][0].at(frame[at][1]) if frame else None
    return NetdslError(message, location, notes)


class _Pending:
    """A primitive with its evaluated arguments, waiting for the shapes of its inputs."""

    __slots__ = ("primitive", "args", "frame", "inputs_frame", "written_inputs")

    def __init__(self, primitive: Primitive, args: dict, frame: Frame):
        self.primitive, self.args, self.frame = primitive, args, frame
        self.inputs_frame: Frame | None = None  # where `<- ...` is, when it is written
        self.written_inputs: list[str] = []     # as written, for messages


_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
               "/": lambda a, b: a / b, "//": lambda a, b: a // b}


class _Expander:
    def __init__(self, blocks: dict[str, _Block], env: dict[str, Any]):
        self.blocks = blocks
        self.globals = env
        self.node_count = 0

    @staticmethod
    def definitions(statements: list, source: Source, known: dict[str, _Block]) -> dict[str, _Block]:
        blocks = dict(known)
        mine: set[str] = set()
        for stmt in statements:
            if isinstance(stmt, _Block):
                here = source.at(stmt.pos)
                if stmt.name in PRIMITIVES:
                    raise NetdslError(f"'{stmt.name}' is a primitive; give the block another name",
                                      here)
                if stmt.name in mine:
                    raise NetdslError(f"block '{stmt.name}' is defined twice", here)
                for inner in stmt.body:
                    if isinstance(inner, (_Block, _Param)):
                        kind = "block" if isinstance(inner, _Block) else "param"
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

    # -- expressions --

    def eval(self, expr: _Expr, env: dict, frame: Frame) -> Any:
        """The value of `expr`; `frame`'s innermost entry is in the text `expr` comes from."""
        if isinstance(expr, _Const):
            return expr.value
        if isinstance(expr, _Name):
            if expr.name not in env:
                known = ", ".join(sorted(env)) or "none"
                raise _fail(f"unknown name '{expr.name}' (names here: {known})",
                            _moved(frame, expr.pos))
            return env[expr.name]
        if isinstance(expr, _Unary):
            value = self.eval(expr.operand, env, frame)
            if expr.op == "not":
                if not isinstance(value, bool):
                    raise _fail(f"'not' needs true or false, got {value!r}", _moved(frame, expr.pos))
                return not value
            return -self._number(value, "-", frame, expr.pos)
        left = self._number(self.eval(expr.left, env, frame), expr.op, frame, expr.left.pos)
        right = self._number(self.eval(expr.right, env, frame), expr.op, frame, expr.right.pos)
        if expr.op in ("/", "//") and right == 0:
            raise _fail("division by zero", _moved(frame, expr.right.pos))
        try:
            result = _ARITHMETIC[expr.op](left, right)
        except OverflowError:
            result = math.inf
        return self._number(result, expr.op, frame, expr.pos)

    @staticmethod
    def _number(value: Any, op: str, frame: Frame, pos: tuple[int, int]):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(f"'{op}' needs numbers, got {value!r}", _moved(frame, pos))
        if abs(value) > 2 ** 62:  # past this, arithmetic on ints gets slow and floats inexact
            raise _fail("number too large", _moved(frame, pos))
        return value

    # -- calls --

    def bind(self, callee: str, params: tuple[tuple[str, Any], ...], switches: frozenset[str],
             call: _Call, env: dict, frame: Frame) -> dict:
        """Match a call's arguments to `params` ((name, default)). A bare name that names a
        switch parameter of the callee is a flag: it sets that parameter to true."""
        values: dict[str, Any] = {}
        next_positional = 0
        for arg in call.args:
            if arg.name is None and isinstance(arg.expr, _Name) and arg.expr.name in switches:
                name, value = arg.expr.name, True
            elif arg.name is None:
                if isinstance(arg.expr, _Name) and arg.expr.name not in env:
                    raise _fail(f"unknown name '{arg.expr.name}': not a parameter of this "
                                f"network, nor a switch of {callee}"
                                + (f" ({', '.join(sorted(switches))})" if switches else ""),
                                _moved(frame, arg.pos))
                if next_positional >= len(params):
                    names = ", ".join(name for name, _ in params) or "none"
                    raise _fail(f"{callee} takes at most {len(params)} argument"
                                f"{'s' if len(params) != 1 else ''} ({names})",
                                _moved(frame, arg.pos))
                name = params[next_positional][0]
                next_positional += 1
                value = self.eval(arg.expr, env, frame)
            else:
                name = arg.name
                if not any(name == known for known, _ in params):
                    names = ", ".join(known for known, _ in params) or "none"
                    raise _fail(f"{callee} has no parameter '{name}' (it takes: {names})",
                                _moved(frame, arg.pos))
                value = self.eval(arg.expr, env, frame)
            if name in values:
                raise _fail(f"{callee}: argument '{name}' is given twice", _moved(frame, arg.pos))
            values[name] = value
        for name, default in params:
            if name not in values:
                if default is REQUIRED:
                    raise _fail(f"{callee} needs argument '{name}'", frame)
                values[name] = default
        return values

    def call_block(self, block: _Block, call: _Call, env: dict, frame: Frame) -> Nested:
        if any(callee == block.name for _, _, callee in frame[:-1]):
            raise _fail(f"block '{block.name}' calls itself; recursion is not supported", frame)
        args = self.bind(block.name, block.params, block.switches, call, env, frame)
        for name, value in args.items():
            default = block.constant_defaults.get(name)
            if default is not None and not isinstance(value, _Expr) and (
                    isinstance(default, bool) != isinstance(value, bool)):
                kind = "a switch (true or false)" if name in block.switches else "a number"
                raise _fail(f"{block.name}: '{name}' is {kind}, got {value!r}", frame)
        # Defaults are expressions, evaluated where the block is defined: the file's parameters.
        inner_frame = frame + ((block.source, block.pos, block.name),)
        for name, value in args.items():
            if isinstance(value, _Expr):
                args[name] = self.eval(value, self.globals, inner_frame)
        return self.body(block.body, {**self.globals, **args}, block.source, frame)

    def body(self, statements: list, env: dict, source: Source, frame: Frame,
             nodes: Nested | None = None) -> Nested:
        nodes = {} if nodes is None else nodes
        for stmt in statements:
            if isinstance(stmt, _Item):
                self.item(stmt, env, source, frame, nodes)
        return nodes

    def item(self, item: _Item, env: dict, source: Source, frame: Frame, nodes: Nested) -> None:
        call = item.call
        here = frame + ((source, call.pos, call.name),)
        if item.condition is not None:
            wanted = self.eval(item.condition, env, here)
            if not isinstance(wanted, bool):
                raise _fail(f"'if' needs true or false, got {wanted!r}", here)
            if not wanted:
                return
        count = 1
        if item.repeat is not None:
            try:
                count = whole(self.eval(item.repeat, env, here), "repeat count", 0)
            except NetdslError as e:
                raise _fail(e.message, here) from None
            if count > MAX_REPEAT:
                raise _fail(f"repeat count {count} is more than {MAX_REPEAT}", here)
        primitive = PRIMITIVES.get(call.name)
        block = self.blocks.get(call.name)
        label = item.label
        if primitive is None and block is None:
            if label is not None:
                raise _fail(f"unknown block '{call.name}'", here)
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

    def add_primitive(self, primitive: Primitive, item: _Item, name: str | None, env: dict,
                      frame: Frame, nodes: Nested) -> None:
        args = self.bind(primitive.name, primitive.params, primitive.switches, item.call, env,
                         frame)
        leaf = _Pending(primitive, args, frame)
        if name is None:
            name, n = primitive.name, 0
            while name in nodes:
                n += 1
                name = f"{primitive.name}_{n}"
        self.put(nodes, name, leaf, frame, item.label_pos)
        if item.inputs is not None:
            leaf.inputs_frame = _moved(frame, item.inputs_pos)
            leaf.written_inputs = list(item.inputs)
            nodes[name] = (leaf, list(item.inputs))

    def add_block(self, sub: Nested, item: _Item, name: str | None, source: Source,
                  frame: Frame, nodes: Nested) -> None:
        if item.inputs is not None:
            inputs_frame = _moved(frame, item.inputs_pos)
            first, leaf = next(path_iter(sub), (None, None))
            if first is None:
                raise _fail(f"{item.call.name} has no nodes to take the inputs", inputs_frame)
            group = sub
            for part in first[:-1]:
                group = group[part]
            if isinstance(leaf, tuple):
                raise _fail(f"the first node of {item.call.name} ('{SEP.join(first)}') "
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
            raise _fail(f"the name '{name}' is already used here; give this node another label",
                        _moved(frame, label_pos) if label_pos else frame)
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _fail(f"the network has more than {MAX_NODES} nodes", frame)
        nodes[name] = value


# ---- shapes -------------------------------------------------------------------------------------

# Layers whose output may be modified in place by the activation that reads it: none of them
# keeps its output for the backward pass, and none returns (a view of) its input.
_OVERWRITABLE = {"Conv2d", "BatchNorm", "Linear", "Add", "Cat", "MaxPool2d", "AvgPool2d", "Mul"}


def _infer(nested: Nested, input_shape: Shape) -> Nested:
    """Replace every pending leaf of `nested` by its Op, checking shapes on the way."""
    flat = pipeline(nested)
    order = [path for path, _ in flat]
    graph: dict[str, tuple[Any, list[str]]] = {}
    readers: dict[str, int] = dict.fromkeys(order, 0)
    for index, (path, (leaf, inputs)) in enumerate(flat):
        try:
            resolved = [resolve(path, rel, order, index) for rel in inputs]
        except NetdslError:
            raise _fail(f"an input in '{', '.join(leaf.written_inputs)}' climbs above the "
                        "network", leaf.inputs_frame) from None
        for source in resolved:
            if source not in readers:
                raise _fail(f"'{path}' uses '{source}', which is not in the network",
                            leaf.inputs_frame or leaf.frame)
            readers[source] += 1
        graph[path] = (leaf, resolved)

    try:
        order = execution_order(graph)
    except NetdslError as e:
        first = e.message.split(": ", 1)[1].split(" -> ")[0]
        raise _fail(e.message, graph[first][0].frame) from None

    shapes: dict[str, Shape] = {}
    ops: dict[str, Op | None] = {}
    for path in order:
        leaf, inputs = graph[path]
        if leaf is None:
            shapes[path], ops[path] = tuple(input_shape), None
            continue
        primitive = leaf.primitive
        low, high = primitive.inputs
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}"
            raise _fail(f"{primitive.name} takes {want} input{'s' if low > 1 else ''}, "
                        f"got {len(inputs)}", leaf.inputs_frame or leaf.frame)
        in_shapes = [shapes[i] for i in inputs]
        source_op = ops.get(inputs[0])
        exclusive = (len(inputs) == 1 and readers[inputs[0]] == 1
                     and source_op is not None and source_op.type in _OVERWRITABLE)
        try:
            op = primitive.infer(leaf.args, in_shapes, exclusive)
            shape = output_shape(op, in_shapes)
        except NetdslError as e:
            raise _fail(e.message, leaf.frame) from None
        if min(shape) < 1:
            raise _fail(f"{primitive.name} would give an empty output ({format_shape(shape)})",
                        leaf.frame)
        shapes[path], ops[path] = shape, op
    return _replace_leaves(nested, ops)


def _replace_leaves(nested: Nested, ops: dict[str, Op | None], prefix: str = "") -> Nested:
    out: Nested = {}
    for name, value in nested.items():
        path = prefix + name
        if isinstance(value, dict):
            out[name] = _replace_leaves(value, ops, path + SEP)
        elif isinstance(value, tuple):
            out[name] = (ops[path], value[1])
        else:
            out[name] = ops[path]
    return out


# ---- the entry point ----------------------------------------------------------------------------

def parse_source(source: Source, params: dict[str, Any], input_shape: Shape) -> Nested:
    try:
        return _parse_source(source, params, input_shape)
    except RecursionError:
        raise NetdslError(f"{source.name}: expressions or blocks nest too deeply") from None


def declared_parameters(source: Source) -> dict[str, Any]:
    """The parameters `source` declares, with their default values, in order."""
    statements = _syntax(source)
    return _bind_parameters(statements, source, {}, _Expander({}, {}))


def _bind_parameters(statements: list, source: Source, params: dict[str, Any],
                     expander: _Expander) -> dict[str, Any]:
    """Evaluate the `param` statements in order, `params` overriding their defaults."""
    env = expander.globals
    declared = [s for s in statements if isinstance(s, _Param)]
    names = [p.name for p in declared]
    unknown = [name for name in params if name not in names]
    if unknown:
        have = ", ".join(names) if names else "no parameters"
        raise NetdslError(f"{source.name}: unknown parameter '{unknown[0]}' (this network has: {have})")
    for param in declared:
        here = ((source, param.pos, param.name),)
        if param.name in env:
            raise _fail(f"parameter '{param.name}' is declared twice", here)
        default = expander.eval(param.expr, env, here)
        env[param.name] = _check_binding(param.name, params[param.name], default, here) \
            if param.name in params else default
    return env


def _parse_source(source: Source, params: dict[str, Any], input_shape: Shape) -> Nested:
    statements = _syntax(source)
    blocks = _Expander.definitions(statements, source, _prelude())
    env: dict[str, Any] = {}
    expander = _Expander(blocks, env)
    _bind_parameters(statements, source, params, expander)
    for block in blocks.values():
        if block.source is source:
            for formal in block.formals:
                if formal.default is not None:
                    expander.eval(formal.default, env, ((source, formal.pos, block.name),))
    nodes: Nested = {INPUT: (None, [])}
    items = [s for s in statements if isinstance(s, _Item)]
    if not items:
        raise NetdslError(f"{source.name}: the text defines no layers")
    expander.body(items, env, source, (), nodes)
    return _infer(nodes, input_shape)


def _check_binding(name: str, value: Any, default: Any, frame: Frame) -> Any:
    if isinstance(default, bool) != isinstance(value, bool) or not isinstance(
            value, (bool, int, float)):
        kind = "true or false" if isinstance(default, bool) else "a number"
        raise _fail(f"parameter '{name}' takes {kind}, got {value!r}", frame)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(f"parameter '{name}' must be finite, got {value!r}", frame)
    return value
