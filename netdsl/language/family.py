"""The front door: text -> `Family` (parsed once) -> `Bound` (one network of the family).

    family = netdsl.load("models/resnet9.net")  # or DSL text
    family.parameters                            # {"prep": Parameter("prep", 64, "whole"), ...}
    net = family.bind({"prep": 32}, input_shape=(3, 32, 32))
    net.graph, net.shapes, net.flops, net.fingerprint   # read off the checked network
    net.text                                     # this network as DSL, printed from the tree
    net.module()                                 # an nn.Module (imports torch)

A search binds one family thousands of times: binding evaluates the parsed statements and checks
shapes; it never parses text again.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

from ..errors import NetdslError, refusal
from ..graph import (INPUT, PRIMITIVES, Graph, Nested, Shape, ShapedGraph, costs, kind_of,
                     pipeline, summary)
from ..graph.listings import to_records
from ..graph.nested import shaped
from .choices import Callee, ChoicePoint, Chooser, at_defaults
from .check import resolve_ops
from .evaluate import Frame
from .expand import Choices, Expander, bind_parameters, definitions, prelude, unknown_names
from .from_graph import candidate_texts, same_graph
from .printer import print_statements
from .survey import ChoiceSpace, survey
from .syntax import MAX_TEXT, Item, Source, parse_statements

if TYPE_CHECKING:
    import graphviz

    from ..module.network import Network

DEFAULT_INPUT_SHAPE: Shape = (3, 32, 32)  # CIFAR images: channels, height, width

PathOrText = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Parameter:
    """A `param` a family declares: its name, default, and kind: "switch" (true or false),
    "whole" (an integer default: channels, depth), "number", or "op" (a block or primitive:
    `param e = zero`)."""

    name: str
    default: Any
    kind: str


def _kind(value: Any) -> str:
    """The kind of a parameter whose default is `value` (see Parameter)."""
    kind = "op" if isinstance(value, Callee) else kind_of(value)
    assert kind is not None, value  # a param's value is a number, true/false or a callee
    return kind


class Family:
    """DSL text parsed once: its statements, block definitions and parameters. `bind` makes
    networks of it."""

    def __init__(self, text: str, source: str = "<string>"):
        self.source = Source(source, text)
        with _nesting_limit(self.source):
            self.statements = parse_statements(self.source)
            self.blocks = definitions(self.statements, self.source, prelude())
            self.callables = frozenset(PRIMITIVES) | frozenset(self.blocks)
            defaults = bind_parameters(self.statements, self.source, {}, self.callables)
        self.parameters = {name: Parameter(name, value, _kind(value))
                           for name, value in defaults.items()}
        self._items = [s for s in self.statements if isinstance(s, Item)]
        if not self._items:
            raise NetdslError(f"{source}: the text defines no layers")

    @property
    def name(self) -> str:
        """Where the text came from: a file's path, `<-e>`, `<string>`."""
        return self.source.name

    @property
    def text(self) -> str:
        return self.source.text

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    def check_values(self, values: dict[str, Any]) -> None:
        """Raise NetdslError for an unknown parameter or choice, or a value of the wrong kind,
        without checking the network's shapes (for a caller that does not know the input shape
        yet)."""
        self._expand(values, at_defaults)

    @functools.cached_property
    def choice_points(self) -> dict[str, ChoicePoint]:
        """The choice points met at the defaults (others may be met when they are not)."""
        return self._expand({}, at_defaults)[2].points

    def space(self, values: dict[str, Any] | None = None, *,
              input_shape: Shape = DEFAULT_INPUT_SHAPE,
              between: Callable[[], None] | None = None) -> ChoiceSpace:
        """The networks the family's choices describe with `values` bound (see
        `survey.survey`): a point `values` names is fixed, no choice. Each option a probe
        binds is checked against `input_shape`: one that does not fit is an error naming the
        choice and the option. `between` is called before each binding, and may raise to
        abandon the survey (an editor's, whose text has changed since)."""
        values = dict(values or {})

        def bind(picks: dict[str, Any]) -> Bound:
            if between is not None:
                between()
            try:  # a value for a point that only other picks meet (`--set n=3 --set t_2/x=...`)
                return self.bind({**values, **picks}, input_shape=input_shape,
                                 ignore_unknown=bool(picks))
            except NetdslError as e:
                if not picks:
                    raise
                said = ", ".join(f"{name} = {value}" for name, value in picks.items())
                raise NetdslError(f"with {said}: {e.message}", e.location, e.notes) from None

        return survey(bind, frozenset(values))

    def listed_points(self, space: ChoiceSpace, fixed: dict[str, Any],
                      what: str | tuple[Any, ...]) -> tuple[ChoicePoint, ...]:
        """Every choice point of the family's networks, those `fixed` and the others of its
        `space`, in the order the text declares them, when the space's networks can be listed
        (for `what`: the argument that asks, as (parameter,) or (parameter, value), which an
        ArgumentError names; or a text that names it): each point finite, and met in every
        network."""
        refused = functools.partial(refusal, what)
        if not self.choice_points:
            raise refused(f"{self.name} declares no choice(...) to list networks by")
        if not space.static:
            raise refused(f"{self.name}'s choices are met only for some values of others; "
                          "networks are listed by one value per choice point, so every point "
                          "must be met in every network")
        endless = next((p for p in space.points if p.size is None), None)
        if endless is not None:
            raise refused(f"{self.name}'s choice '{endless.name}' is a range of real numbers: "
                          "its networks are endless")
        points = {p.name: p for p in space.points}
        points.update((name, point) for name, point in self.choice_points.items()
                      if name in fixed and name not in points)
        order = [*self.choice_points, *points]
        return tuple(sorted(points.values(), key=lambda point: order.index(point.name)))

    def _expand(self, values: dict[str, Any], chooser: Chooser, ignore_unknown: bool = False
                ) -> tuple[dict[str, Any], Nested, Choices]:
        with _nesting_limit(self.source):
            choices = Choices(values, chooser)
            env = bind_parameters(self.statements, self.source, values, self.callables, choices)
            nodes: Nested = {INPUT: (None, [])}
            Expander(self.blocks, env, choices).body(self._items, env, self.source, (), nodes)
            if not ignore_unknown:
                unknown_names(self.statements, self.source, values, choices.points)
        return env, nodes, choices

    def bind(self, values: dict[str, Any] | None = None, /, *,
             input_shape: Shape = DEFAULT_INPUT_SHAPE, chooser: Chooser = at_defaults,
             ignore_unknown: bool = False, **bindings: Any) -> "Bound":
        """The network with parameters and choices `values` (and keywords) bound by name, the
        other choices as `chooser` picks them (their defaults unless given), checked against
        inputs of `input_shape` (channels, height, width). Raises NetdslError, located in the
        text, for an unknown name (unless `ignore_unknown`: values meant for points that this
        binding does not meet, or for another family), a value of the wrong kind or a network
        that does not fit."""
        values = {**(values or {}), **bindings}
        env, nodes, choices = self._expand(values, chooser, ignore_unknown)
        with _nesting_limit(self.source):
            nested, graph = resolve_ops(nodes, tuple(input_shape))
        return Bound(self, {name: values[name] for name in self.parameters if name in values},
                     env, nested, graph, choices.made, choices.points)

    def makers(self, values: dict[str, Any] | None = None) -> dict[str, tuple[str, ...]]:
        """Node path -> what the calls that made the node called, outermost first, bound with
        `values`: blocks, then the primitive (`("cell", "nor_conv_3x3", "relu_conv_bn",
        "bn")`); which option of a choice made a node where its path does not say."""
        return {path: tuple(callee for _, _, callee in frame)
                for path, frame in self.frames(values).items()}

    def frames(self, values: dict[str, Any] | None = None) -> dict[str, Frame]:
        """Node path -> the frame of the call that made it (the input has none), bound with
        `values`: each call on the way, outermost first, as (source, (line, column), what it
        called); where an editor finds what a written call made (`language.places`)."""
        _, nodes, _ = self._expand(dict(values or {}), at_defaults)
        return {path: leaf.frame for path, (leaf, _) in pipeline(nodes) if leaf is not None}

    def _repr_svg_(self) -> str:
        """Jupyter shows a family as the drawing of its network at the defaults."""
        return self.bind()._repr_svg_()

    def __repr__(self) -> str:
        return f"Family({self.name!r}, parameters={list(self.parameters)})"


class Bound:
    """One network of a family: the values bound, the checked graph (Page's nested dict and its
    flattened form), every node's output shape, parameters and FLOPs, and the network as DSL
    text printed from the syntax tree."""

    def __init__(self, family: Family, values: dict[str, Any], parameters: dict[str, Any],
                 nested: Nested, graph: ShapedGraph, choices: dict[str, Any] | None = None,
                 points: dict[str, ChoicePoint] | None = None):
        self.family = family
        self.values = values          # the parameters' values bound, as given
        self.parameters = parameters  # every parameter's value in this network
        self.nested = nested
        self.graph = graph            # shaped: every node's output shape is known
        self.choices = choices or {}  # each choice point met -> what was chosen, in order
        self.points = points or {}    # each choice point met

    @property
    def input_shape(self) -> Shape:
        return self.graph.input_shape

    def makers(self) -> dict[str, tuple[str, ...]]:
        """Node path -> the blocks and primitive whose calls made the node (`Family.makers`),
        found by expanding this network's values and choices again."""
        return self.family.makers({**self.values, **self.choices})

    @property
    def shapes(self) -> dict[str, Shape]:
        """path -> output shape per image, without the batch."""
        return self.graph.shapes

    @functools.cached_property
    def costs(self) -> dict[str, tuple[int, int]]:
        """path -> (weights, frozen ones too; forward FLOPs per image); counted when first
        asked."""
        return costs(self.graph)

    @property
    def output_shape(self) -> Shape:
        return self.graph.shapes[self.graph.output]

    @property
    def weight_count(self) -> int:
        """Weights (torch's parameters), frozen ones too."""
        return sum(params for params, _ in self.costs.values())

    @property
    def flops(self) -> int:
        """Forward FLOPs per image; a multiply-add counts as 2."""
        return sum(flops for _, flops in self.costs.values())

    @functools.cached_property
    def text(self) -> str:
        """This network as standalone DSL text, with no choice left: the family printed from
        its syntax tree with the bound values (and a parameter's choice) as the parameters'
        defaults, comments not kept. A family that chooses items or inputs, per instance of a
        block, prints its graph instead (`to_text`)."""
        if any(point.kind in ("item", "inputs") for point in self.points.values()):
            return graph_to_text(self.graph, self.input_shape)
        chosen = {name: self.parameters[name] for name in self.points}
        return print_statements(self.family.statements, {**self.values, **chosen})

    @functools.cached_property
    def fingerprint(self) -> str:
        """Same checked graph on the same input shape -> same hash, however it was written."""
        # Tuples are written as lists, as a parse of `to_json`'s text would give them: cached
        # scores keyed by earlier fingerprints stay found.
        canonical = json.dumps({"graph": to_records(self.graph),
                                "input_shape": list(self.input_shape)}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def summary(self) -> str:
        return summary(self.graph, self.costs)

    def module(self, seed: int | None = None) -> "Network":
        """A fresh nn.Module of this network, its weights initialised from `seed` (torch's own
        generator is left as it was), or from torch's generator as it is when None."""
        from ..module.network import Network

        if seed is None:
            return Network(self.graph)
        import torch

        with torch.random.fork_rng(devices=[]):  # initialisation runs on the CPU
            torch.manual_seed(seed)
            return Network(self.graph)

    def draw(self, *, shapes: bool = False, depth: int | None = None, rankdir: str = "TB",
             show_identity: bool = False, marks: dict[str, str] | None = None,
             name: str = "network",
             edge_labels: dict[tuple[str, str], str] | None = None) -> "graphviz.Digraph":
        """The network drawn with graphviz (see `netdsl.module.draw.draw_graph`): `shapes`
        labels the edges with tensor shapes, `depth` collapses deeper paths into boxes."""
        from ..module.draw import draw_graph

        return draw_graph(self.graph, shapes=self.shapes if shapes else None, costs=self.costs,
                          show_identity=show_identity, depth=depth, rankdir=rankdir,
                          marks=marks, name=name, edge_labels=edge_labels)

    def _repr_svg_(self) -> str:
        """Jupyter shows a bound network as its drawing."""
        return self.draw().pipe(format="svg").decode()

    def __repr__(self) -> str:
        return (f"Bound({self.family.name!r}, values={self.values}, "
                f"input_shape={self.input_shape}, {len(self.graph) - 1} nodes)")


def graph_to_text(graph: Graph, input_shape: Shape) -> str:
    """DSL text for `graph` (fed images of `input_shape`) that parses to the same graph; a
    graph that is no network is a NetdslError saying what is wrong where."""
    graph = shaped(graph, input_shape)  # a graph that is no network fails here
    for text in candidate_texts(graph, graph_of):
        parsed = graph_of(text, tuple(input_shape))
        if parsed is not None and same_graph(parsed, graph):
            return text
    raise NetdslError("this graph has no DSL text that parses back to it (a node the language "
                      "cannot name, or inputs in an order it cannot write)")


def graph_of(text: str, input_shape: Shape) -> Graph | None:
    """The graph DSL `text` makes for inputs of `input_shape`, or None when it does not bind."""
    try:
        return load(text).bind(input_shape=input_shape).graph
    except NetdslError:
        return None


def load(network: PathOrText, /, *, source: str | None = None) -> Family:
    """A family from a `.net` file (a PathLike, or a str ending in `.net`) or from DSL text."""
    if isinstance(network, os.PathLike) or (isinstance(network, str)
                                            and network.endswith(".net")):
        return Family(read_text(network), str(network) if source is None else source)
    if isinstance(network, str):
        return Family(network, "<string>" if source is None else source)
    raise NetdslError(f"expected DSL text or a .net path, got {type(network).__name__}")


def read_text(path: PathOrText, *, regular_only: bool = False) -> str:
    """A .net file's text; one past MAX_TEXT characters (or endless, like /dev/zero) is
    refused after reading just past the limit. `regular_only` refuses at once anything but a
    regular file: opening a FIFO waits for a writer, which a command line may mean
    (`<(...)`) but a language server must never do."""
    try:
        opener = _regular_file if regular_only else None
        with open(path, encoding="utf-8-sig", opener=opener) as f:  # a byte-order mark: not text
            text = f.read(MAX_TEXT + 1)
        if len(text) > MAX_TEXT:
            raise NetdslError(f"{path}: more than {MAX_TEXT:,} characters; a network is at most "
                              f"{MAX_TEXT:,}")
        return text
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise NetdslError(f"cannot read {path}: {reason}") from None


def _regular_file(path: str, flags: int) -> int:
    """`os.open` of a regular file only: O_NONBLOCK opens a FIFO at once instead of waiting
    for a writer, then fstat tells what was opened."""
    descriptor = os.open(path, flags | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a folder)")
    return descriptor


@contextlib.contextmanager
def _nesting_limit(source: Source) -> Iterator[None]:
    """Turns Python's recursion limit, reached by absurdly nested text, into a NetdslError."""
    try:
        yield
    except RecursionError:
        raise NetdslError(f"{source.name}: expressions or blocks nest too deeply") from None
