"""Evaluating a family's statements into Page's nested dict: parameters, block calls,
conditions, repeats and naming. Leaves are `Pending` primitives with their arguments; `check.py`
turns them into Ops once the shapes reaching them are known."""
from __future__ import annotations

import functools
import math
from typing import Any

from ..errors import NetdslError
from ..graph import MIX, PRIMITIVES, SEP, Nested, Primitive, fits, kind_of, path_iter, whole
from .choices import (INPUTS_MARK, LISTED_AT_MOST, MIXED, MIXED_KINDS, SPACES, Callee,
                      ChoicePoint, Chooser, Combinations, MixedCallee, at_defaults,
                      options_point, space_point)
from .evaluate import Frame, bind_arguments, error_at, moved, value_of
from .printer import call_text
from .syntax import (MAX_NUMBER, PRELUDE, Block, Call, CallValue, Expr, InputChoice, Item, Name,
                     Param, Source, grammar_file, parse_statements)

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
            if stmt.name in SPACES:
                raise NetdslError(f"'{stmt.name}' writes a choice; give the block another name",
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


class Choices:
    """The choices of one binding: values given by name (`picks`), the chooser asked for the
    rest, and each point met with what was chosen (`made`), in the order met."""

    def __init__(self, picks: dict[str, Any], chooser: Chooser = at_defaults):
        self.picks, self.chooser = picks, chooser
        self.points: dict[str, ChoicePoint] = {}
        self.made: dict[str, Any] = {}
        self.mixing: str | None = None  # the mixed point whose options are being expanded

    def choose(self, point: ChoicePoint, frame: Frame) -> Any:
        if point.name in self.points:
            raise error_at(f"two choices are named '{point.name}'; label one otherwise", frame)
        value = self.picks[point.name] if point.name in self.picks else self.chooser(point)
        if value is MIXED:
            if point.kind not in MIXED_KINDS:
                raise error_at(f"choice '{point.name}' offers numbers "
                               f"({point.describe_options()}), which no mixture of outputs "
                               "searches: bind it to one", frame)
            if self.mixing is not None:
                raise error_at(f"choice '{point.name}' lies inside an option of the mixed "
                               f"choice '{self.mixing}': mixing is one level deep; bind one "
                               "of the two", frame)
            if isinstance(point.options, Combinations) and point.options.size > LISTED_AT_MOST:
                raise error_at(f"choice '{point.name}' has {point.size:,} combinations of "
                               f"inputs, more than a mixture weighs ({LISTED_AT_MOST:,})", frame)
            self.points[point.name], self.made[point.name] = point, MIXED
            return MIXED
        try:
            value = point.check(value)
        except NetdslError as e:
            raise error_at(e.message, frame) from None
        self.points[point.name], self.made[point.name] = point, value
        return value


def bind_parameters(statements: list, source: Source, params: dict[str, Any],
                    callables: frozenset[str] = frozenset(),
                    choices: Choices | None = None) -> dict[str, Any]:
    """The value of every `param` statement, evaluated in order, `params` overriding their
    defaults; a parameter declared as a choice takes its value from `choices` (at its default
    when None). A name in `callables` (a block or primitive) is a value too: `param e = zero`."""
    choices = choices or Choices(params)
    env: dict[str, Any] = {}
    declared = [s for s in statements if isinstance(s, Param)]
    for param in declared:
        here = ((source, param.pos, param.name),)
        if param.name in env:
            raise error_at(f"parameter '{param.name}' is declared twice", here)
        if isinstance(param.expr, CallValue):
            point = _declared_space(param, env, callables, here)
            value = choices.choose(point, moved(here, param.expr.pos))
            env[param.name] = MixedCallee(point) if value is MIXED else \
                Callee(value) if point.kind == "op" else value
            continue
        if isinstance(param.expr, Name) and param.expr.name not in env and \
                param.expr.name in callables:
            default = Callee(param.expr.name)
        else:
            default = value_of(param.expr, env, here)
        env[param.name] = _check_binding(param.name, params[param.name], default, callables,
                                         here) if param.name in params else default
    return env


def unknown_names(statements: list, source: Source, params: dict[str, Any],
                  points: dict[str, ChoicePoint]) -> None:
    """Raise for a value bound by a name that is neither a `param` nor a choice point met."""
    names = [s.name for s in statements if isinstance(s, Param)]
    unknown = [name for name in params if name not in names and name not in points]
    if unknown:
        have = ", ".join([*names, *(p for p in points if p not in names)]) or "no parameters"
        raise NetdslError(f"{source.name}: unknown parameter '{unknown[0]}' "
                          f"(this network has: {have})")


def _declared_space(param: Param, env: dict, callables: frozenset[str],
                    frame: Frame) -> ChoicePoint:
    """The point of `param x = choice(...)`, `range(...)` or `logrange(...)`."""
    assert isinstance(param.expr, CallValue)  # bind_parameters calls it for those only
    call = param.expr.call
    at = moved(frame, call.pos)
    if call.name not in SPACES:
        raise error_at(f"param {param.name} = {call.name}(...): a parameter is a value, or one "
                       "drawn from choice(...), range(...) or logrange(...)", at)
    args, keywords = [], {}
    for arg in call.args:
        if isinstance(arg.expr, CallValue):
            raise error_at(f"a shared choice's options are blocks or primitives by name, "
                           f"without arguments: write them where '{param.name}' is called",
                           moved(frame, arg.pos))
        if isinstance(arg.expr, Name) and arg.expr.name not in env and \
                arg.expr.name in callables:
            value: Any = Callee(arg.expr.name)
        else:
            value = value_of(arg.expr, env, moved(frame, arg.pos))
        if arg.name is None:
            args.append(value)
        else:
            keywords[arg.name] = value
    try:
        return space_point(param.name, call.name, args, keywords, f"param {param.name}")
    except NetdslError as e:
        raise error_at(e.message, at) from None


def _check_binding(name: str, value: Any, default: Any, callables: frozenset[str],
                   frame: Frame) -> Any:
    if isinstance(default, Callee):
        if str(value) not in callables or not isinstance(value, (str, Callee)):
            raise error_at(f"parameter '{name}' takes a block or primitive by name, got "
                           f"{value!r}", frame)
        return Callee(str(value))
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


def whole_at(value: Any, what: str, frame: Frame, minimum: int = 1) -> int:
    """`whole(value, what, minimum)`, its error located at `frame`'s place in the text."""
    try:
        return whole(value, what, minimum)
    except NetdslError as e:
        raise error_at(e.message, frame) from None


def _option_keys(names: list[str]) -> list[str]:
    """The group names of a mixed choice's options: what each calls, numbered where two call
    the same (`conv_bn`, `conv_bn_1`), never `in` or `mix` (the group's own nodes)."""
    keys: list[str] = []
    for name in names:
        key, n = name, 0
        while key in keys or key in ("in", "mix"):
            n += 1
            key = f"{name}_{n}"
        keys.append(key)
    return keys


def _written(frame: Frame) -> tuple:
    """Where the calls of `frame` are written: alike for each instance of a repeated block."""
    return tuple((source.name, pos) for source, pos, _ in frame)


class Expander:
    """Expands items into nodes: one per binding of a family (it counts the nodes made), asking
    `choices` at each item or inputs choice it meets."""

    def __init__(self, blocks: dict[str, Block], env: dict[str, Any], choices: Choices):
        self.blocks = blocks
        self.globals = env
        self.choices = choices
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

    def call_block(self, block: Block, call: Call, env: dict, frame: Frame,
                   prefix: str) -> Nested:
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
        return self.body(block.body, {**self.globals, **args}, block.source, frame, prefix=prefix)

    def body(self, statements: list, env: dict, source: Source, frame: Frame,
             nodes: Nested | None = None, prefix: str = "") -> Nested:
        """The nodes of `statements`, made in the group at path `prefix` (`""`, or ending in
        `/`): what names the choices met."""
        nodes = {} if nodes is None else nodes
        for stmt in statements:
            if isinstance(stmt, Item):
                self.item(stmt, env, source, frame, nodes, prefix)
        return nodes

    def item(self, item: Item, env: dict, source: Source, frame: Frame, nodes: Nested,
             prefix: str) -> None:
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
            count = whole_at(value_of(item.repeat, env, here), "repeat count", here, 0)
            if count > MAX_REPEAT:
                raise error_at(f"repeat count {count} is more than {MAX_REPEAT}", here)
        chooses = call.name == "choice" or isinstance(item.inputs, InputChoice)
        if chooses and item.label is None:
            raise error_at("a choice needs a label: the node's path names the choice", here)
        label = item.label
        if call.name != "choice":  # the same callee for every instance: found once
            primitive, block = PRIMITIVES.get(call.name), None
            if primitive is None:
                block = self.blocks.get(call.name)
                if block is None:  # a parameter naming a callee, or a stage
                    primitive, block, here = self.callee(call, item, env, source, frame)
                    if block is self.blocks["stage"] and label is None:
                        label = call.name
        for i in range(count):
            name = None if label is None else label if i == 0 else f"{label}_{i}"
            inputs = item.inputs
            mixed: tuple[ChoicePoint, list[Call]] | None = None
            made = call  # the call this instance makes: for a choice, the option chosen
            if call.name == "choice":
                assert name is not None  # a choice has a label: refused above without one
                chosen = self.chosen_call(call, prefix + name, env, here)
                if isinstance(chosen, tuple):
                    mixed = chosen
                else:
                    made = chosen
                    primitive, block, here = self.callee(chosen, item, env, source, frame)
            elif primitive is None and block is None:  # a parameter's op choice, mixed
                point = env[call.name].point
                mixed = point, [Call(option, call.args, call.pos) for option in point.options]
            if isinstance(inputs, InputChoice):
                assert name is not None  # a choice has a label: refused above without one
                at = moved(here, inputs.pos)
                picked = self.chosen_inputs(inputs, prefix + name, env, at)
                inputs = self.mixed_inputs(picked, name, at, nodes) \
                    if isinstance(picked, ChoicePoint) else picked
            if mixed is not None:
                self.add_mixed(*mixed, item, name or call.name, inputs, env, source, here,
                               nodes)
            elif primitive is not None:
                self.add_primitive(primitive, made, item, name, inputs, env, here, nodes)
            else:
                # callee() found one of the two: a choice's options, and a parameter's callee,
                # were checked to name a primitive or a block
                assert block is not None
                sub = self.call_block(block, made, env, here,
                                      prefix + name + SEP if name is not None else prefix)
                self.add_block(sub, item, name, inputs, source, here, nodes)

    def callee(self, call: Call, item: Item, env: dict, source: Source, frame: Frame
               ) -> tuple[Primitive | None, Block | None, Frame]:
        """What `call` calls, a primitive or a block, and the frame to locate errors in it: a
        parameter naming one (`e(c)`) calls that one; an unknown name without a label is a
        stage (`layer1(128, pool)` is `layer1: stage(128, pool)`)."""
        here = frame + ((source, call.pos, call.name),)
        if call.name in PRIMITIVES or call.name in self.blocks:
            return PRIMITIVES.get(call.name), self.blocks.get(call.name), here
        callee = env.get(call.name)
        if isinstance(callee, MixedCallee):  # every option is called: `item` expands them
            return None, None, here
        if isinstance(callee, Callee):  # the frame names what is called, not the parameter
            return (PRIMITIVES.get(callee.name), self.blocks.get(callee.name),
                    frame + ((source, call.pos, callee.name),))
        if call.name in SPACES:
            raise error_at(f"{call.name}(...) is what a param is drawn from; an item chooses "
                           "with choice(...)", here)
        if item.label is not None:
            raise error_at(f"unknown block '{call.name}'", here)
        return None, self.blocks["stage"], frame + ((source, call.pos, "stage"),)

    def chosen_call(self, call: Call, path: str, env: dict, frame: Frame
                    ) -> Call | tuple[ChoicePoint, list[Call]]:
        """The call an item choice `path: choice(option, ...)` makes: each option a call (or a
        block's or primitive's name), `default=N` marking the N-th (from 0) as the default.
        Mixed: the point and every option's call."""
        options: list[Call] = []
        default = 0
        for arg in call.args:
            at = moved(frame, arg.pos)
            if arg.name == "default":
                default = whole_at(value_of(arg.expr, env, at), "choice: default", at, 0)
                continue
            if arg.name is not None:
                raise error_at(f"choice(...) takes options and default=, not {arg.name}=", at)
            if isinstance(arg.expr, CallValue):
                option = arg.expr.call
            elif isinstance(arg.expr, Name):
                option = Call(arg.expr.name, [], arg.pos)
            else:
                raise error_at("an item's choice takes calls (conv_bn(c), zero, ...), not "
                               "values", at)
            target = env[option.name].name if isinstance(env.get(option.name), Callee) \
                else option.name
            if target not in PRIMITIVES and target not in self.blocks:
                raise error_at(f"option '{option.name}' is neither a primitive nor a block", at)
            options.append(option)
        if not options:
            raise error_at("choice(...) needs at least one option", frame)
        if default >= len(options):
            raise error_at(f"choice: default={default} but there are {len(options)} options "
                           "(counted from 0)", frame)
        labels = [call_text(option) for option in options]
        if len(set(labels)) != len(labels):
            raise error_at(f"an option is listed twice: {', '.join(labels)}", frame)
        point = options_point(path, "item", labels, default, _written(frame))
        chosen = self.choices.choose(point, frame)
        return (point, options) if chosen is MIXED else options[labels.index(chosen)]

    def chosen_inputs(self, choice: InputChoice, path: str, env: dict, frame: Frame
                      ) -> list[str] | ChoicePoint:
        """The paths `<- choice(ref, ..., k=K)` reads: K of them (1 unless given); the point
        when it is mixed."""
        k = 1 if choice.k is None else whole_at(value_of(choice.k, env, frame), "choice: k",
                                                 frame)
        if not choice.refs:
            raise error_at("choice(...) of inputs needs at least one path", frame)
        if len(set(choice.refs)) != len(choice.refs):
            raise error_at(f"a path is listed twice: {', '.join(choice.refs)}", frame)
        if k > len(choice.refs):
            raise error_at(f"choice of {k} inputs from {len(choice.refs)} paths", frame)
        point = options_point(path + INPUTS_MARK, "inputs", Combinations(choice.refs, k), 0,
                              _written(frame))
        chosen = self.choices.choose(point, frame)
        return point if chosen is MIXED else chosen.split(",")

    def mixed_inputs(self, point: ChoicePoint, name: str, frame: Frame,
                     nodes: Nested) -> list[str]:
        """A mixed `name: ... <- choice(refs..., k=K)`: the K inputs it reads become K `mix`
        nodes beside it, `name_inputs`, `name_inputs_1`, ..., the j-th weighing each ref by
        the probabilities of the combinations whose j-th input it is; their paths."""
        options = point.options
        assert isinstance(options, Combinations)  # an inputs point's: options_point makes them
        combinations = [label.split(",") for label in options]
        slots = []
        for j in range(options.k):
            selects = {ref: tuple(c for c, chosen in enumerate(combinations) if chosen[j] == ref)
                       for ref in options.refs}
            refs = [ref for ref, chosen in selects.items() if chosen]
            leaf = Pending(MIX, {"point": point.name,
                                 "selects": tuple(selects[ref] for ref in refs)}, frame)
            leaf.inputs_frame, leaf.written_inputs = frame, refs
            slot = f"{name}_inputs" + (f"_{j}" if j else "")
            self.put(nodes, slot, (leaf, refs), frame)
            slots.append(slot)
        return slots

    def add_mixed(self, point: ChoicePoint, options: list[Call], item: Item, name: str,
                  inputs: list[str] | None, env: dict, source: Source, frame: Frame,
                  nodes: Nested) -> None:
        """A mixed op or item choice: the group `name` holding each option's nodes in its own
        group (named by what it calls), each reading the item's inputs (through an `in`
        identity where the item takes the node before it), and their `mix`, its output."""
        group: Nested = {}
        if inputs is None:
            group["in"] = Pending(PRIMITIVES["identity"], {}, frame)
        reads = ["in"] if inputs is None else ["../" + ref for ref in inputs]
        keys = _option_keys([option.name for option in options])
        outer = frame[:-1]  # each option's call takes the item's place in the frame
        self.choices.mixing = point.name
        try:
            for key, option in zip(keys, options):
                primitive, block, at = self.callee(option, item, env, source, outer)
                prefix = f"{name}{SEP}{key}{SEP}"
                sub: Nested = {}
                if primitive is not None:
                    self.add_primitive(primitive, option, item, None, None, env, at, sub)
                else:
                    assert block is not None  # each option was checked to name one of the two
                    sub = self.call_block(block, option, env, at, prefix)
                self.add_block(sub, item, key, reads, source, at, group)
        finally:
            self.choices.mixing = None
        leaf = Pending(MIX, {"point": point.name,
                             "selects": tuple((i,) for i in range(len(options)))}, frame)
        leaf.inputs_frame, leaf.written_inputs = frame, keys
        group["mix"] = (leaf, keys)
        self.put(nodes, name, group, frame, item.label_pos)

    def add_primitive(self, primitive: Primitive, call: Call, item: Item, name: str | None,
                      inputs: list[str] | None, env: dict, frame: Frame, nodes: Nested) -> None:
        args = bind_arguments(primitive.name, primitive.params, primitive.switches, call, env,
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
        if inputs is not None:
            inputs_pos = item.inputs_pos
            # inputs given here are the item's own, after a `<-` whose place the parser keeps
            # (add_mixed gives its options none)
            assert inputs_pos is not None
            leaf.inputs_frame = moved(frame, inputs_pos)
            leaf.written_inputs = list(inputs)
            nodes[name] = (leaf, list(inputs))

    def add_block(self, sub: Nested, item: Item, name: str | None, inputs: list[str] | None,
                  source: Source, frame: Frame, nodes: Nested) -> None:
        if inputs is not None:
            # No `<-` where add_mixed gives an option its group's `in`: the call's place then.
            inputs_frame = frame if item.inputs_pos is None else moved(frame, item.inputs_pos)
            found = next(path_iter(sub), None)
            if found is None:
                raise error_at(f"{item.call.name} has no nodes to take the inputs", inputs_frame)
            first, leaf = found
            group = sub
            for part in first[:-1]:
                group = group[part]
            if isinstance(leaf, tuple):
                raise error_at(f"the first node of {item.call.name} ('{SEP.join(first)}') "
                               "already names its inputs", inputs_frame)
            # The refs are relative to this group; the leaf sits deeper.
            climb = "../" * (len(first) - 1 + (name is not None))
            leaf.inputs_frame = inputs_frame
            leaf.written_inputs = list(inputs)
            group[first[-1]] = (leaf, [climb + ref for ref in inputs])
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
