"""The `netdsl` command line: argument parsing, and each command handed to the module that does
it (run.py, search/). Heavy modules load only when their command runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from runtime.recipe import SEEDS

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, NetdslError
from .graph import operations, to_json
from .language import DEFAULT_INPUT_SHAPE, Family, read_text
from .language.choices import INPUTS_MARK
from .score import BATCH_SIZE as SCORING_BATCH, SCORES

_EPILOG = """\
A network is a file (models/resnet9.net) or, with -e, a string:
  netdsl show -e 'prep(64) -> layer1(128, pool, res) -> head(10)'
  netdsl show models/resnet9.net --set layer1=64 --format ops
  netdsl draw models/resnet9.net -o resnet9.svg
  netdsl check models/resnet9.net && echo valid
  netdsl run models/resnet9.net --dataset cifar10 --json run.json
  netdsl run models/airbench94.net --recipe airbench94 --dataset cifar10
  netdsl export models/resnet9.net -o resnet9.onnx
  netdsl fmt models/*.net --check
"""


def _value(text: str) -> Any:
    """A --set value: true/false, an integer, a number, or else the text (an option's name:
    the network says whether it takes it)."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _binding(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE")
    return name.strip(), _value(value.strip())


def _count(text: str) -> int:
    """A whole number >= 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 0")
    return value


def _sample(text: str) -> int | str:
    """--sample: a whole number >= 1, or all."""
    if text == "all" or _whole(text) >= 1:
        return text if text == "all" else int(text)
    raise argparse.ArgumentTypeError(f"--sample must be at least 1, or all; got '{text}'")


def _seed(text: str) -> int:
    """A seed, in a recipe's range: numpy's generators (Optuna's samplers) take no more."""
    value = _whole(text)
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a seed: a whole number from 0 to "
                                         f"{SEEDS - 1} (2**32 - 1)")
    return value


def _whole(text: str) -> int:
    """`text` as a whole number; -1 when it is not one."""
    try:
        return int(text)
    except ValueError:
        return -1


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not CHANNELS,HEIGHT,WIDTH (e.g. 3,32,32)")
    return shape


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netdsl", description="Describe, draw and check small convolutional "
                     "networks written in the netdsl language.", epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"netdsl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    # Flag sets shared by commands: argparse parents.
    bindings = _Parser(add_help=False)
    bindings.add_argument("--set", metavar="NAME=VALUE", type=_binding, action="append",
                          default=[], help="bind a parameter or choice the network declares "
                          "(repeatable); a choice of blocks or items takes an option by name "
                          "or by place (0, 1, ...)")
    bindings.add_argument("--nb201", metavar="ARCH",
                          help="bind the six edges of models/nb201.net from a NAS-Bench-201 "
                          "architecture string, |nor_conv_3x3~0|+|...|+|...|")
    shaped = _Parser(add_help=False)
    shaped.add_argument("--input-shape", metavar="C,H,W", type=_shape,
                        default=DEFAULT_INPUT_SHAPE,
                        help="shape of one input image (default: 3,32,32, CIFAR)")
    laid_out = _Parser(add_help=False)
    laid_out.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                          help="top to bottom (default) or left to right")
    network = _Parser(add_help=False, parents=[bindings])
    source = network.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a .net file")
    source.add_argument("-e", "--expr", metavar="TEXT", help="the network as a string")
    sized = _Parser(add_help=False, parents=[network, shaped])

    show = commands.add_parser("show", parents=[sized], help="print the network",
                               description="Print the network: a summary table (output shape, "
                               "parameters and FLOPs per node, totals per stage), the seed's "
                               "operations listing, or the resolved graph as JSON.")
    show.add_argument("--format", choices=("summary", "ops", "json", "dsl", "nb201"),
                      default="summary",
                      help="summary (default): shapes, weights, FLOPs per image; "
                      "ops: Page's (path, (op, inputs)) listing; json: the resolved graph; "
                      "dsl: the network as standalone DSL text, no choice left; nb201: its "
                      "NAS-Bench-201 architecture string (models/nb201.net)")

    draw = commands.add_parser("draw", parents=[sized, laid_out],
                               help="draw the network with graphviz",
                               description="Draw the network. The suffix of -o picks the "
                               "format: .svg, .png, .pdf (these need graphviz's dot program) "
                               "or .dot (plain text, needs nothing).")
    draw.add_argument("-o", "--output", metavar="FILE",
                      help="where to write (default: the .net file's name with .svg)")
    draw.add_argument("--show-identity", action="store_true",
                      help="draw Identity nodes too (hidden by default)")
    draw.add_argument("--choices", action="store_true",
                      help="outline in blue the nodes an item's or inputs' choice made")
    draw.add_argument("--shapes", action="store_true",
                      help="label each edge with the shape of the tensor it carries")
    draw.add_argument("--depth", type=_count, metavar="N",
                      help="collapse everything below N path parts into one box per prefix, "
                      "with its parameters and FLOPs (--depth 1: one box per stage)")

    export = commands.add_parser(
        "export", parents=[sized], help="write the network as ONNX, torch.export or TorchScript",
        description="Write the network, with --weights (from `netdsl run --save-weights`) or "
        "freshly initialised, to a file other tools open. The suffix of -o picks the format: "
        ".onnx (nodes and weights named by DSL path, as Netron shows them; needs `pip install "
        "netdsl[export]`), .pt2 (torch.export) or .ts.pt (TorchScript, traced).")
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="model.onnx, model.pt2 or model.ts.pt")
    export.add_argument("--weights", metavar="FILE.pt",
                        help="weights saved by `netdsl run --save-weights` for this network")

    fmt = commands.add_parser(
        "fmt", help="format .net files canonically, comments kept",
        description="Rewrite each .net file in the canonical layout (a statement a line, "
        "a `->` chain written on one line kept there while it fits in 100 columns, block "
        "bodies indented by four spaces, expressions with only the parentheses they need), "
        "keeping its comments. A file that does not parse is reported as `check` "
        "reports it and left untouched (exit 2). --check writes nothing and exits 1 when a "
        "file would change.")
    fmt.add_argument("files", nargs="+", metavar="FILE", help=".net files")
    fmt.add_argument("--check", action="store_true",
                     help="only say which files would change (exit 1 if any)")

    diff = commands.add_parser(
        "diff", parents=[bindings, shaped, laid_out],
        help="what differs between two networks, node by node",
        description="Print the nodes removed from FIRST (-), changed (~: the layer or its "
        "inputs) and added in SECOND (+), matched by path; exit 0 when the two are the same "
        "network, 1 when they differ, 2 when one does not parse. -o draws both side by side, "
        "the differences outlined: red removed, orange changed, green added. --set binds a "
        "parameter in each network that declares it.")
    diff.add_argument("first", help="a .net file")
    diff.add_argument("second", help="a .net file")
    diff.add_argument("-o", "--output", metavar="FILE", help="draw both: .svg, .png, .pdf, .dot")

    space = commands.add_parser(
        "space", parents=[sized], help="list the choices a .net file declares, and count them",
        description="List every choice point of the network's text (a parameter's choice or "
        "range, an item's or inputs' choice, by the name a search, --set and the trials use), "
        "with its options and default, and the number of networks the text describes: exact, "
        "also when choices sit inside blocks, repeats or other choices' options (counted by "
        "walking them, up to 5,000 bindings; past that an upper bound, said so). Every option "
        "is bound once and checked against --input-shape.")
    space.add_argument("--format", choices=("text", "nni", "json"), default="text",
                       help="text (default); nni: NNI's search_space.json of the same space; "
                       "json: the points and the count")

    commands.add_parser("check", parents=[sized], help="validate only: exit 0 if valid, 2 if not",
                        description="Parse and check the network; print one line and exit 0 "
                        "if it is valid, print the error and exit 2 if not.")

    run = commands.add_parser(
        "run", parents=[network], help="train the network and print the per-epoch table",
        description="Train the network with a recipe (--recipe: the seed's, airbench94's, "
        "airbench94_muon's or a file; every part a flag) and print "
        "the seed's per-epoch table. Exit 0 when done, 2 for bad input, 3 when the loss stops "
        "being finite, 130 on Ctrl-C (after writing --json).")
    _training_arguments(run)
    run.add_argument("--runs", type=int, default=1, metavar="N",
                     help="repeat with seeds seed, seed+1, ...; prints mean and std")
    run.add_argument("--json", metavar="FILE", help="write per-epoch records, final metrics and "
                     "the evidence (DSL text, hyperparameters, versions, device) here")
    run.add_argument("--save-weights", metavar="FILE.pt",
                     help="save the trained weights, keyed by node path (the last run's)")
    run.add_argument("--quiet", action="store_true",
                     help="no per-epoch table and no progress line (a terminal shows one "
                     "during each epoch): one line per run with its result")

    score = commands.add_parser(
        "score", parents=[network], help="rank networks without training: zero-cost scores",
        description="Score the network, or --sample N networks drawn at random from its "
        "choices, at initialisation on one seeded batch of training images: weights, FLOPs, "
        "grad_norm, snip, synflow (Abdelfattah et al. 2021) and naswot (Mellor et al. 2021); "
        "higher ranks higher. A score not defined for a network is nan, with the reason.")
    _data_arguments(score)
    _device_argument(score)
    score.add_argument("--proxy", default=",".join(SCORES), metavar="NAME,...",
                       help=f"the scores (default: all of {', '.join(SCORES)})")
    score.add_argument("--sample", type=_sample, metavar="N|all",
                       help="score N different networks drawn at random from the file's "
                       "choices, or all of them")
    score.add_argument("--table", metavar="PATH",
                       help="a CSV table of the networks' truth (as `search --table` reads it): "
                       "beside the scores, each score's Kendall tau, Spearman rho and top-10%% "
                       "overlap against its --metric")
    score.add_argument("--metric", metavar="COLUMN", help="--table's column, e.g. cifar10")
    score.add_argument("--batch-size", type=int, default=SCORING_BATCH, metavar="B",
                       help=f"images in the scoring batch (default: {SCORING_BATCH})")
    score.add_argument("--seed", type=_seed, default=0,
                       help="draws the batch, the networks and their initial weights")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")

    supernet = commands.add_parser(
        "supernet", parents=[network], help="train one weight-sharing supernet of the choices",
        description="Train a supernet of the network's choices (single-path one-shot, Guo et "
        "al. 2020): one module holding every layer of every network of the space, by node path "
        "at its widest; each training step trains networks drawn at random (--sampling), with "
        "the recipe. Then `netdsl search FILE --supernet FILE.pt` ranks networks by their accuracy "
        "with its weights (BatchNorm recalibrated), and `netdsl run --init-from FILE.pt` "
        "starts a network from them.")
    _training_arguments(supernet)
    supernet.add_argument("-o", "--output", required=True, metavar="FILE.pt",
                          help="where to save the supernet")
    supernet.add_argument("--sampling", choices=("uniform", "fair"), default="uniform",
                          help="uniform: each step trains one network, each choice drawn "
                          "uniformly; fair: each step deals every choice point's options in a "
                          "random order to as many networks as the largest point has options, "
                          "each trained on its share of the batch, so every option trains on "
                          "as many images (default: uniform)")

    commands.add_parser("lsp", help="the language server for editors (stdio)",
                        description="Serve the language to an editor over stdio (the Language "
                        "Server Protocol): diagnostics as `netdsl check` gives them, shapes as inlay "
                        "hints, hover, completion, definitions, document symbols, formatting, "
                        "the space's size. Needs pip install 'netdsl[lsp]'.")

    search = commands.add_parser(
        "search", parents=[network], help="search a parameterised network and its recipe",
        description="Sample the network's own choices (choice(...), range(...), logrange(...) "
        "in its text) and the search space of --space (NNI's search_space.json format) with an "
        "Optuna tuner; each trial binds the network's parameters and trainer settings, trains with "
        "the shared trainer on data loaded once, and is stored, so the same command resumes. "
        "Trials whose network fails, diverges or runs out of memory are recorded as failed.")
    _search_arguments(search)

    trial = commands.add_parser(
        "trial", parents=[network], help="run one NNI trial (NNI's trialCommand)",
        description="Run one trial under NNI: values from nni.get_next_parameter() bind the "
        "network's parameters and trainer settings; the validation accuracy goes to "
        "nni.report_intermediate_result after each epoch and to nni.report_final_result at the "
        "end. See models/nni/config.yml.")
    _training_arguments(trial)

    trials = commands.add_parser("trials", help="list a search's trials",
                                 description="List a search's trials, a line each: number, "
                                 "state, accuracy, training seconds and the values drawn (what "
                                 "varies). With a trial's NUMBER: that trial whole, its DSL "
                                 "text and its trainer flags.")
    trials.add_argument("number", nargs="?", type=_count, metavar="NUMBER",
                        help="show this trial whole")
    _study_arguments(trials)
    trials.add_argument("--json", action="store_true", help="print JSON instead of a table")
    trials.add_argument("--csv", metavar="FILE", help="write the trials as CSV")
    best = commands.add_parser("best", help="print the best trial's DSL text",
                               description="Print the best trial's DSL text, ready for "
                               "`netdsl run -e`; for two objectives, that of the Pareto "
                               "front's best at --objective (stderr says which trial it is).")
    _study_arguments(best)
    best.add_argument("--flags", action="store_true",
                      help="print the trainer flags of the best trial instead: "
                      "netdsl run -e \"$(netdsl best)\" $(netdsl best --flags) --dataset ...")
    best.add_argument("--objective", choices=("accuracy", "time", "flops"),
                      help="for two objectives: the Pareto front's trial best at this one "
                      "(default: accuracy)")
    plot = commands.add_parser("plot", help="plot a search (history, accuracy against time, "
                               "parameter importance) or runs' training curves",
                               description="Without RUN.json: write history.png "
                               "(optimisation history), accuracy_time.png (accuracy against "
                               "training time, with the Pareto front) and importance.png "
                               "(parameter importance) of a search into a folder. With "
                               "`netdsl run --json` records: their training curves, loss and "
                               "validation accuracy per epoch, every run overlaid, in one image.")
    plot.add_argument("runs", nargs="*", metavar="RUN.json",
                      help="records of `netdsl run --json` to plot as training curves")
    _study_arguments(plot)
    plot.add_argument("-o", "--output", metavar="DIR|FILE",
                      help="a search's: the folder for its images (default: plots); runs': "
                      "the image, .png, .svg or .pdf (default: curves.png)")
    for command, func in (("show", _show), ("draw", _draw), ("export", _export), ("fmt", _fmt),
                          ("diff", _diff), ("space", _space), ("check", _check), ("run", _train),
                          ("score", _score), ("supernet", _supernet), ("lsp", _lsp),
                          ("search", _search),
                          ("trial", _trial),
                          ("trials", _trials),
                          ("best", _best), ("plot", _plot)):
        commands.choices[command].set_defaults(func=func)
    return parser


def _data_arguments(parser: argparse.ArgumentParser, needed: bool = True
                    ) -> argparse._ArgumentGroup:
    """The dataset and how much of it: the flags of every command that loads data (`needed`
    False: a command that may do without, and says when it cannot)."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=needed, metavar="NAME|PATH",
                      help="cifar10, cifar100, mnist, fashion-mnist, svhn, stl10 (downloaded "
                      "into --data-dir once), or an image "
                      "folder PATH/{train,test}/<class>/*.png|jpg (decoded once, then cached); "
                      "the network is checked against its images' shape"
                      + ("" if needed else " (not needed with --table)"))
    data.add_argument("--data-dir", metavar="DIR", help="download and cache folder (default: "
                      "$NETDSL_DATA, else ~/.cache/netdsl)")
    data.add_argument("--train-limit", type=_count, default=0, metavar="N",
                      help="train on a random N of the training images (default: all)")
    return data


def _device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("device").add_argument(
        "--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1")


def _training_arguments(parser: argparse.ArgumentParser, dataset_needed: bool = True) -> None:
    """The flags of every command that trains: data, the recipe (a preset or file, and a flag
    per Recipe field over it), device, initial weights."""
    from .settings import add_recipe_flags  # reads runtime.Recipe's fields; no torch

    data = _data_arguments(parser, dataset_needed)
    data.add_argument("--valid-split", type=_count, default=0, metavar="N",
                      help="hold out a random N of those training images (seeded by --seed) "
                      "and evaluate every epoch, prune and select on them; the test set then "
                      "only reports the final network's accuracy (default: 0, evaluate on the "
                      "test set)")
    data.add_argument("--evaluate", choices=("auto", "every", "last"), default="auto",
                      help="evaluate on the validation images after every epoch, or only for "
                      "the result (the last epoch; with test-time augmentation only the final "
                      "evaluation). Default auto: every epoch when the per-epoch table is "
                      "shown, a --json record is written, a pruner or NNI asks; else last")
    add_recipe_flags(parser.add_argument_group("recipe"))
    _device_argument(parser)
    parser.add_argument("--init-from", metavar="FILE.pt",
                        help="start from saved weights (--save-weights) of this or a wider "
                        "network: copied by node path, the first channels kept where it is wider")


def _search_arguments(search: argparse.ArgumentParser) -> None:
    from .search.loop import OBJECTIVES, PRUNERS, TUNERS
    from .settings import search_keys

    search.add_argument("--space", metavar="SPACE.json",
                        help="NNI's search_space.json format; keys bind the network's parameters "
                        "and choices or trainer settings (" + ", ".join(search_keys()) + "). "
                        "Without it, the choices the .net file declares are searched")
    search.add_argument("--trials", type=int, required=True, metavar="N",
                        help="the search's total budget: a finished search adds nothing when run "
                        "again, an interrupted one continues up to N")
    _study_arguments(search)
    search.add_argument("--tuner", choices=TUNERS, default="tpe",
                        help="Optuna sampler (default: tpe); evolution: regularized evolution "
                        "(Real et al. 2019); predictor: a Gaussian process over the choices "
                        "and each network's FLOPs picks the next network")
    search.add_argument("--population", type=int, default=10, metavar="P",
                        help="evolution: the population, the P newest finished trials; the "
                        "first P trials are drawn at random (default: 10)")
    search.add_argument("--tournament", type=int, default=3, metavar="S",
                        help="evolution: how many of the population are sampled; the best of "
                        "them is mutated in one choice (default: 3)")
    search.add_argument("--prefilter", metavar="PROXY:K",
                        help="draw K candidate networks a trial from the tuner, score each "
                        "with a zero-cost proxy (see netdsl score) and train the best-scored; "
                        "e.g. synflow:8")
    search.add_argument("--supernet", metavar="FILE.pt",
                        help="rank each network by its accuracy with this supernet's weights "
                        "(netdsl supernet), BatchNorm recalibrated, instead of training it")
    search.add_argument("--table", metavar="PATH",
                        help="look each network's --metric up in this CSV table (.csv, .csv.xz, "
                        ".csv.gz: a row a network, named by NAS-Bench-201's arch column or a "
                        "column per choice point) instead of training it; no --dataset needed")
    search.add_argument("--metric", metavar="COLUMN",
                        help="--table's column to maximise, e.g. cifar10")
    search.add_argument("--pruner", choices=PRUNERS, default="none",
                        help="stop poor trials early on their per-epoch accuracy (default: none)")
    search.add_argument("--objectives", choices=OBJECTIVES, default="accuracy",
                        help="maximise accuracy, or also minimise training time or FLOPs "
                        "(a Pareto front)")
    search.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop starting new trials after this long")
    search.add_argument("--resume", action="store_true",
                        help="continue a stored search (an error if there is none); running "
                        "the same command again does the same")
    _training_arguments(search, dataset_needed=False)


def _study_arguments(parser: argparse.ArgumentParser) -> None:
    from .search.storage import DEFAULT_STORAGE

    parser.add_argument("--name", metavar="NAME",
                        help="the search's name in the storage (default: the .net file's name)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                        help=f"Optuna storage URL (default: {DEFAULT_STORAGE}); a PostgreSQL URL "
                        "lets several workers share one search")


def _family(args: argparse.Namespace) -> Family:
    if args.expr is not None:
        return Family(args.expr, "<-e>")
    return Family(read_text(args.file), args.file)


def _fmt(args: argparse.Namespace) -> int:
    from .files import check_rewritable, file_identity, rewrite_in_place
    from .language.printer import format_text
    from .language.syntax import Source, parse_statements

    formatted, seen = {}, set()
    for path in args.files:  # every file parses before any is written
        check_rewritable(path)
        identity = file_identity(path)
        if identity in seen:  # the same file under a second name: formatted once
            continue
        seen.add(identity)
        text = read_text(path)
        # An empty file is left as it is, not given a line break.
        formatted[path] = text, format_text(parse_statements(Source(path, text)), text) \
            if text else text
    changed = [path for path, (before, after) in formatted.items() if before != after]
    for path in changed:
        if args.check:
            print(f"would reformat {path}")
        else:
            rewrite_in_place(path, formatted[path][1].encode("utf-8"))
            print(f"reformatted {path}")
    unchanged = len(formatted) - len(changed)
    if unchanged:
        print(f"{unchanged} file{'s' * (unchanged != 1)} already formatted")
    return 1 if args.check and changed else 0


def _diff(args: argparse.Namespace) -> int:
    from .graph import diff

    families = [Family(read_text(path), path) for path in (args.first, args.second)]
    # Each network takes the values it meets: a parameter, or a choice point (an item's by
    # its path) that binding meets; a value neither meets is a mistake.
    bound = [family.bind(dict(args.set), input_shape=args.input_shape, ignore_unknown=True)
             for family in families]
    known = [{*family.parameters, *one.points} for family, one in zip(families, bound)]
    unknown = [name for name, _ in args.set if not any(name in names for names in known)]
    if unknown:
        declared = sorted(set().union(*known))
        raise NetdslError(f"--set {unknown[0]}: neither network declares it (they declare: "
                          f"{', '.join(declared) or 'no parameters'})")
    changes = diff(bound[0].graph, bound[1].graph)
    for change in changes:
        print(change)
    counts = {kind: sum(c.kind == kind for c in changes) for kind in ("removed", "changed",
                                                                      "added")}
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()) if changes else
          f"the same network: {len(bound[0].graph) - 1} nodes")
    if args.output:
        from .module.draw import draw_diff, write_drawing

        print(f"wrote {write_drawing(draw_diff(*bound, changes, args.rankdir), args.output)}")
    return 1 if changes else 0


def _refuse_clashes(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that is the same file as something the command reads
    (the network, weights, the recipe, a search's storage...) or as another output."""
    from .files import refuse_clashes

    command = args.command
    network = [("the network", getattr(args, "file", None))]
    if command == "supernet":
        from .settings import recipe_file

        refuse_clashes([("-o", args.output)], network + [
            ("the recipe", recipe_file(args.recipe)), ("--init-from", args.init_from)])
    if command in ("run", "search"):
        from .search.storage import storage_file
        from .settings import recipe_file

        inputs = network + [("the recipe", recipe_file(args.recipe)),
                            ("--init-from", args.init_from)]
        if command == "run":
            refuse_clashes([("--json", args.json), ("--save-weights", args.save_weights)],
                           inputs)
        else:
            refuse_clashes([("--storage", storage_file(args.storage))],
                           inputs + [("--space", args.space), ("--supernet", args.supernet),
                                     ("--table", args.table)])
    elif command == "trials":
        from .search.storage import storage_file

        refuse_clashes([("--csv", args.csv)], [("the storage", storage_file(args.storage))])
    elif command == "plot" and args.runs:
        refuse_clashes([("-o", args.output)], [(f"the record {run}", run) for run in args.runs])
    elif command == "plot":
        from .search.storage import storage_file
        from .search.study import PLOTS

        refuse_clashes([("-o", Path(args.output) / name) for name in PLOTS],
                       [("the storage", storage_file(args.storage))])
    elif command in ("draw", "export"):
        refuse_clashes([("-o", args.output)],
                       network + [("--weights", getattr(args, "weights", None))])
    elif command == "diff":
        refuse_clashes([("-o", args.output)], [("the first network", args.first),
                                               ("the second network", args.second)])


def _bound(args: argparse.Namespace):
    return _family(args).bind(dict(args.set), input_shape=args.input_shape)


def _show(args: argparse.Namespace) -> int:
    bound = _bound(args)
    if args.format == "ops":
        print(operations(bound.nested))
    elif args.format == "json":
        print(to_json(bound.graph))
    elif args.format == "dsl":
        print(bound.text, end="")
    elif args.format == "nb201":
        from .nb201 import from_bound

        print(from_bound(bound))
    else:
        print(bound.summary())
    return 0


def _draw(args: argparse.Namespace) -> int:
    from .module.draw import write_drawing

    bound = _bound(args)
    marks = {}
    if args.choices:  # the nodes an item's or inputs' choice made, outlined
        for point in bound.points.values():
            path = point.name.removesuffix(INPUTS_MARK)
            if point.kind in ("item", "inputs"):
                marks.update({node: "chosen" for node in bound.graph
                              if node == path or node.startswith(path + "/")})
    written = write_drawing(bound.draw(show_identity=args.show_identity, shapes=args.shapes,
                                       depth=args.depth, rankdir=args.rankdir, marks=marks),
                            args.output)
    print(f"wrote {written}")
    return 0


def _space(args: argparse.Namespace) -> int:
    import json

    family = _family(args)
    space = family.space(dict(args.set), input_shape=args.input_shape)
    if args.format == "nni":
        print(json.dumps({point.name: point.nni() for point in space.points}, indent=1))
        if not space.static:
            print(f"netdsl: note: some of {family.name}'s choices are met only for some values "
                  "of others; NNI draws every key, and a network ignores the ones it does not "
                  "meet", file=sys.stderr)
        return 0
    if args.format == "json":  # the count's key says what it counts
        print(json.dumps({"networks" if space.distinct else "combinations": space.count,
                          "exact": space.exact, "static": space.static, "fixed": space.fixed,
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


def _check(args: argparse.Namespace) -> int:
    bound = _bound(args)
    line = f"ok: {bound.family.name}: {len(bound.graph) - 1} nodes, {bound.weight_count:,} weights"
    if bound.family.choice_points:  # every option of every choice is checked too
        space = bound.family.space(dict(args.set), input_shape=args.input_shape)
        line += (f" at the defaults; {len(space.points)} choice point"
                 f"{'s' * (len(space.points) != 1)}, {space.checked()}")
    print(line)
    _note_misread_stages(bound.family)
    return 0


def _note_misread_stages(family: Family) -> None:
    """A note for each stage whose name is a slip of a block's (`hed(10)`): it binds, as a conv
    stage, so only a note tells."""
    from .language.names import misread_stages, occurrences

    for stage, message in misread_stages(occurrences(family.statements, family.blocks),
                                         family.blocks):
        print(f"netdsl: note: {family.name}:{stage.line}:{stage.column}: {message}",
              file=sys.stderr)


def _export(args: argparse.Namespace) -> int:
    from .export import export, format_of
    from .fit import load_weights

    output = Path(args.output)
    format_of(output)  # a bad suffix fails before the weights load
    print(f"wrote {export(_bound(args), output, load_weights(args.weights))}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .run import run_command

    return run_command(args, _family(args))


def _score(args: argparse.Namespace) -> int:
    from .ranking import score_command

    return score_command(args, _family(args))


def _supernet(args: argparse.Namespace) -> int:
    from .supernet.command import supernet_command

    return supernet_command(args, _family(args))


def _lsp(args: argparse.Namespace) -> int:
    try:
        from .lsp_server import lsp_command
    except ImportError:
        raise NetdslError("netdsl lsp needs pygls: pip install 'netdsl[lsp]'") from None

    return lsp_command()


def _search(args: argparse.Namespace) -> int:
    from .search.loop import search_command

    return search_command(args, _family(args))


def _trial(args: argparse.Namespace) -> int:
    from .search.nni import trial_command

    return trial_command(args, _family(args))


def _trials(args: argparse.Namespace) -> int:
    from .search.study import trials_command

    return trials_command(args)


def _best(args: argparse.Namespace) -> int:
    from .search.study import best_command

    return best_command(args)


def _plot(args: argparse.Namespace) -> int:
    if not args.runs:
        from .search.study import plot_command

        return plot_command(args)
    from .curves import plot_runs

    print(f"wrote {plot_runs([Path(run) for run in args.runs], Path(args.output))}")
    return 0


def _default_outputs(args: argparse.Namespace) -> None:
    """The output a command writes when -o is not given."""
    if args.command == "plot" and not args.output:
        args.output = "curves.png" if args.runs else "plots"
    if args.command == "draw" and not args.output:
        args.output = Path(args.file).with_suffix(".svg").name if args.file else "network.svg"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "nb201", None) is not None:
            from .nb201 import with_edges

            args.set = with_edges(args.set, args.nb201)
        _default_outputs(args)
        _refuse_clashes(args)
        return args.func(args)
    except NetdslError as e:
        print(f"netdsl: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `netdsl show ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # runs record their own interruption; this is any other moment
        print("netdsl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
