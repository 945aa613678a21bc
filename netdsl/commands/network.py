"""The commands that read one network (or two) and print or write it: show, draw, export,
diff, space, check; and models, the bundled ones listed. They load no data and no torch, except
export."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import NetdslError
from ..graph import operations, to_json
from ..language import Bound, Family, read_text
from ..language.choices import INPUTS_MARK
from . import flags
from .command import Command


def _bound(args: argparse.Namespace) -> Bound:
    return flags.family_of(args).bind(flags.bindings(args), input_shape=args.input_shape)


class Show(Command):
    name = "show"
    help = "print the network"
    description = ("Print the network: a summary table (output shape, parameters and FLOPs per "
                   "node, totals per stage), the seed's operations listing, or the resolved "
                   "graph as JSON.")

    def add_arguments(self, parser):
        flags.add_network(parser, sized=True)
        parser.add_argument("--format", choices=("summary", "ops", "json", "dsl", "nb201"),
                            default="summary",
                            help="summary (default): shapes, weights, FLOPs per image; "
                            "ops: Page's (path, (op, inputs)) listing; json: the resolved graph; "
                            "dsl: the network as standalone DSL text, no choice left; nb201: its "
                            "NAS-Bench-201 architecture string (models/nb201.net)")

    def reads(self, args):
        return flags.network_read(args)

    def run(self, args):
        bound = _bound(args)
        if args.format == "ops":
            print(operations(bound.nested))
        elif args.format == "json":
            print(to_json(bound.graph))
        elif args.format == "dsl":
            print(bound.text, end="")
        elif args.format == "nb201":
            from ..bench.nb201 import from_bound

            print(from_bound(bound))
        else:
            print(bound.summary())
        return 0


class Draw(Command):
    name = "draw"
    help = "draw the network with graphviz"
    description = ("Draw the network. The suffix of -o picks the format: .svg, .png, .pdf "
                   "(these need graphviz's dot program) or .dot (plain text, needs nothing).")

    def add_arguments(self, parser):
        flags.add_network(parser, sized=True)
        flags.add_rankdir(parser)
        parser.add_argument("-o", "--output", metavar="FILE",
                            help="where to write (default: the .net file's name with .svg)")
        parser.add_argument("--show-identity", action="store_true",
                            help="draw Identity nodes too (hidden by default)")
        parser.add_argument("--choices", action="store_true",
                            help="outline in blue the nodes an item's or inputs' choice made")
        parser.add_argument("--alphas", metavar="RECORD.json",
                            help="draw every option of the choices a differentiable search "
                            "(`netdsl supernet --method ... --json`) mixed, each option's edge "
                            "into its mix labelled with its last epoch's probability, the "
                            "options found outlined in blue")
        parser.add_argument("--shapes", action="store_true",
                            help="label each edge with the shape of the tensor it carries")
        parser.add_argument("--depth", type=flags.count, metavar="N",
                            help="collapse everything below N path parts into one box per "
                            "prefix, with its parameters and FLOPs (--depth 1: one box per "
                            "stage)")

    @staticmethod
    def output(args: argparse.Namespace) -> str:
        if args.output:
            return args.output
        return Path(args.file).with_suffix(".svg").name if args.file else "network.svg"

    def reads(self, args):
        return flags.network_read(args) + [("--alphas", args.alphas)]

    def writes(self, args):
        return [("-o", self.output(args))]

    def run(self, args):
        from ..module.draw import write_drawing

        if args.alphas:
            return self.draw_alphas(args)
        bound = _bound(args)
        marks = {}
        if args.choices:  # the nodes an item's or inputs' choice made, outlined
            for point in bound.points.values():
                path = point.name.removesuffix(INPUTS_MARK)
                if point.kind in ("item", "inputs"):
                    marks.update({node: "chosen" for node in bound.graph
                                  if node == path or node.startswith(path + "/")})
        drawing = bound.draw(show_identity=args.show_identity, shapes=args.shapes,
                             depth=args.depth, rankdir=args.rankdir, marks=marks)
        print(f"wrote {write_drawing(drawing, self.output(args))}")
        return 0


    def draw_alphas(self, args) -> int:
        from ..language.choices import mixing
        from ..module.draw import write_drawing
        from ..supernet.alphas import read_alphas

        points, alphas = read_alphas(Path(args.alphas))
        bound = flags.family_of(args).bind(flags.bindings(args), input_shape=args.input_shape,
                                           chooser=mixing)
        mixes = {path: (op.kwargs["point"], inputs) for path, (op, inputs) in bound.graph.items()
                 if op is not None and op.type == "Mix"}
        missing = {point for point, _ in mixes.values()} - set(points)
        if missing:
            raise NetdslError(f"--alphas {args.alphas}: no probabilities for choice "
                              f"'{sorted(missing)[0]}': the record is of another space")
        labels, marks = {}, {}
        for path, (point, inputs) in mixes.items():
            if point.endswith(INPUTS_MARK):  # a slot of an inputs choice: not one per option
                continue
            probabilities = alphas[-1][point]
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            for i, source in enumerate(inputs):
                labels[source, path] = f"p={probabilities[i]:.2f}"
            group = inputs[best].rsplit("/", 1)[0]
            marks.update({node: "chosen" for node in bound.graph if node.startswith(group + "/")})
        drawing = bound.draw(show_identity=args.show_identity, shapes=args.shapes,
                             depth=args.depth, rankdir=args.rankdir, marks=marks,
                             edge_labels=labels)
        print(f"wrote {write_drawing(drawing, self.output(args))}")
        return 0


class Export(Command):
    name = "export"
    help = "write the network as ONNX, torch.export or TorchScript"
    description = ("Write the network, with --weights (from `netdsl run --save-weights`) or "
                   "freshly initialised, to a file other tools open. The suffix of -o picks the "
                   "format: .onnx (nodes and weights named by DSL path, as Netron shows them; "
                   "needs `pip install netdsl[export]`), .pt2 (torch.export) or .ts.pt "
                   "(TorchScript, traced).")

    def add_arguments(self, parser):
        flags.add_network(parser, sized=True)
        parser.add_argument("-o", "--output", required=True, metavar="FILE",
                            help="model.onnx, model.pt2 or model.ts.pt")
        parser.add_argument("--weights", metavar="FILE.pt",
                            help="weights saved by `netdsl run --save-weights` for this network")

    def reads(self, args):
        return flags.network_read(args) + [("--weights", args.weights)]

    def writes(self, args):
        return [("-o", args.output)]

    def run(self, args):
        from ..module.export import export, format_of
        from ..train import load_weights

        output = Path(args.output)
        format_of(output)  # a bad suffix fails before the weights load
        print(f"wrote {export(_bound(args), output, load_weights(args.weights))}")
        return 0


class Diff(Command):
    name = "diff"
    help = "what differs between two networks, node by node"
    description = ("Print the nodes removed from FIRST (-), changed (~: the layer or its inputs) "
                   "and added in SECOND (+), matched by path; exit 0 when the two are the same "
                   "network, 1 when they differ, 2 when one does not parse. -o draws both side "
                   "by side, the differences outlined: red removed, orange changed, green "
                   "added. --set binds a parameter in each network that declares it.")

    def add_arguments(self, parser):
        flags.add_bindings(parser)
        flags.add_input_shape(parser)
        flags.add_rankdir(parser)
        parser.add_argument("first", type=flags.network_file,
                            help="a .net file, or a bundled model's name")
        parser.add_argument("second", type=flags.network_file,
                            help="a .net file, or a bundled model's name")
        parser.add_argument("-o", "--output", metavar="FILE",
                            help="draw both: .svg, .png, .pdf, .dot")

    def reads(self, args):
        return [("the first network", args.first), ("the second network", args.second)]

    def writes(self, args):
        return [("-o", args.output)]

    def run(self, args):
        from ..graph import diff

        families = [Family(read_text(path), path) for path in (args.first, args.second)]
        # Each network takes the values it meets: a parameter, or a choice point (an item's by
        # its path) that binding meets; a value neither meets is a mistake.
        values = flags.bindings(args)
        bound = [family.bind(values, input_shape=args.input_shape, ignore_unknown=True)
                 for family in families]
        known = [{*family.parameters, *one.points} for family, one in zip(families, bound)]
        unknown = [name for name in values if not any(name in names for names in known)]
        if unknown:
            declared = sorted(set().union(*known))
            raise NetdslError(f"--set {unknown[0]}: neither network declares it (they declare: "
                              f"{', '.join(declared) or 'no parameters'})")
        changes = diff(bound[0].graph, bound[1].graph)
        for change in changes:
            print(change)
        counts = {kind: sum(c.kind == kind for c in changes)
                  for kind in ("removed", "changed", "added")}
        print(", ".join(f"{n} {kind}" for kind, n in counts.items()) if changes else
              f"the same network: {len(bound[0].graph) - 1} nodes")
        if args.output:
            from ..module.draw import draw_diff, write_drawing

            drawing = draw_diff(*bound, changes, args.rankdir)
            print(f"wrote {write_drawing(drawing, args.output)}")
        return 1 if changes else 0


class Space(Command):
    name = "space"
    help = "list the choices a .net file declares, and count them"
    description = ("List every choice point of the network's text (a parameter's choice or "
                   "range, an item's or inputs' choice, by the name a search, --set and the "
                   "trials use), with its options and default, and the number of networks the "
                   "text describes: exact, also when choices sit inside blocks, repeats or "
                   "other choices' options (counted by walking them, up to 5,000 bindings; past "
                   "that an upper bound, said so). Every option is bound once and checked "
                   "against --input-shape.")

    def add_arguments(self, parser):
        flags.add_network(parser, sized=True)
        parser.add_argument("--format", choices=("text", "nni", "json"), default="text",
                            help="text (default); nni: NNI's search_space.json of the same "
                            "space; json: the points and the count")

    def reads(self, args):
        return flags.network_read(args)

    def run(self, args):
        family = flags.family_of(args)
        space = family.space(flags.bindings(args), input_shape=args.input_shape)
        if args.format == "nni":
            print(json.dumps({point.name: point.nni() for point in space.points}, indent=1))
            if not space.static:
                print(f"netdsl: note: some of {family.name}'s choices are met only for some "
                      "values of others; NNI draws every key, and a network ignores the ones it "
                      "does not meet", file=sys.stderr)
            return 0
        if args.format == "json":  # the count's key says what it counts
            print(json.dumps({"networks" if space.distinct else "combinations": space.count,
                              "exact": space.exact, "static": space.static,
                              "fixed": space.fixed,
                              "points": [{"name": p.name, "kind": p.kind, "default": p.default,
                                          **p.nni()} for p in space.points]}, indent=1))
            return 0
        fixed = f" (--set fixes {', '.join(space.fixed)})" if space.fixed else ""
        if not space.points:
            print(f"{family.name}: no choices (choice(...), range(...), logrange(...)){fixed}: "
                  "one network")
            return 0
        moving = "" if space.static else "; some choices are met only for some values of others"
        print(f"{family.name}: {len(space.points)} choice point"
              f"{'s' * (len(space.points) != 1)}{fixed}, {space.counted()}{moving}")
        width = max((len(p.name) for p in space.points), default=0)
        for point in space.points:
            print(f"  {point.name:<{width}}  {point.kind:<6}  {point.describe_options()}  "
                  f"(default {_shown(point.default)})")
        return 0


def _shown(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Check(Command):
    name = "check"
    help = "validate only: exit 0 if valid, 2 if not"
    description = ("Parse and check the network; print one line and exit 0 if it is valid, "
                   "print the error and exit 2 if not.")

    def add_arguments(self, parser):
        flags.add_network(parser, sized=True)

    def reads(self, args):
        return flags.network_read(args)

    def run(self, args):
        bound = _bound(args)
        line = (f"ok: {bound.family.name}: {len(bound.graph) - 1} nodes, "
                f"{bound.weight_count:,} weights")
        if bound.family.choice_points:  # every option of every choice is checked too
            space = bound.family.space(flags.bindings(args), input_shape=args.input_shape)
            line += (f" at the defaults; {len(space.points)} choice point"
                     f"{'s' * (len(space.points) != 1)}, {space.checked()}")
        print(line)
        _note_misread_stages(bound.family)
        return 0


class Models(Command):
    name = "models"
    help = "list the bundled models, which any command takes by name"
    description = ("List the model files that come with netdsl, by the name any command takes "
                   "in place of a file (netdsl show resnet9); a file of that name in the "
                   "current folder wins.")

    def run(self, args):
        from netdsl.models import bundled, summary

        import textwrap

        models = bundled()
        width = max(map(len, models), default=0)
        for name, path in models.items():
            print(textwrap.fill(summary(path), 100, initial_indent=f"{name:<{width}}  ",
                                subsequent_indent=" " * (width + 2)))
        print(f"(in {next(iter(models.values())).parent})" if models else "no bundled models")
        return 0


def _note_misread_stages(family: Family) -> None:
    """A note for each stage whose name is a slip of a block's (`hed(10)`): it binds, as a conv
    stage, so only a note tells."""
    from ..language.names import misread_stages, occurrences

    for stage, message in misread_stages(occurrences(family.statements, family.blocks),
                                         family.blocks):
        print(f"netdsl: note: {family.name}:{stage.line}:{stage.column}: {message}",
              file=sys.stderr)
