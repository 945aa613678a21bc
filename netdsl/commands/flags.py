"""The flags several commands share, the types that read them (each a value, or argparse's
error naming the flag), and the typed values a command turns its flags into once: the
family, the data wanted, the recipe. Nothing past a command reads the namespace."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from netdsl_runtime.recipe import SEEDS

from ..errors import EXIT_BAD_INPUT, NetdslError
from ..language import DEFAULT_INPUT_SHAPE, Family, read_text


# A library parameter -> the flag a command gives it from, where that is not the parameter
# in dashes (batch_size: --batch-size).
FLAG_OF = {"output": "-o", "fixed": "--set"}


def flag_mention(parameter: str, *value: Any) -> str:
    """An argument as the command line gives it (an errors.Mention, for an ArgumentError's
    message): `--batch-size`, or `--device cuda:9` with its value."""
    flag = FLAG_OF.get(parameter, "--" + parameter.replace("_", "-"))
    return f"{flag} {value[0]}" if value else flag


def why_stopped(status: str, message: str) -> str:
    """A run's or a search's message, as a command prints it: a diverged one's with the flag
    that cures it (the library reports what happened; it never took flags)."""
    return f"{message}; try a lower --peak-lr" if status == "diverged" else message


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def value(text: str) -> Any:
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


def binding(text: str) -> tuple[str, Any]:
    name, sep, bound = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=VALUE")
    return name.strip(), value(bound.strip())


def count(text: str) -> int:
    """A whole number >= 0."""
    number = _whole(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 0")
    return number


def sample(text: str) -> int | str:
    """--sample: a whole number >= 1, or all."""
    if text == "all" or _whole(text) >= 1:
        return text if text == "all" else int(text)
    raise argparse.ArgumentTypeError(f"--sample must be at least 1, or all; got '{text}'")


def seed(text: str) -> int:
    """A seed, in a recipe's range: numpy's generators (Optuna's samplers) take no more."""
    number = _whole(text)
    if not 0 <= number < SEEDS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a seed: a whole number from 0 to "
                                         f"{SEEDS - 1} (2**32 - 1)")
    return number


def _whole(text: str) -> int:
    """`text` as a whole number; -1 when it is not one."""
    try:
        return int(text)
    except ValueError:
        return -1


def shape(text: str) -> tuple[int, ...]:
    try:
        read = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        read = ()
    if len(read) != 3 or min(read) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not CHANNELS,HEIGHT,WIDTH (e.g. 3,32,32)")
    return read


def add_bindings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", metavar="NAME=VALUE", type=binding, action="append",
                        default=[], help="bind a parameter or choice the network declares "
                        "(repeatable); a choice of blocks or items takes an option by name "
                        "or by place (0, 1, ...)")
    parser.add_argument("--nb201", metavar="ARCH",
                        help="bind the six edges of models/nb201.net from a NAS-Bench-201 "
                        "architecture string, |nor_conv_3x3~0|+|...|+|...|")


def network_file(text: str) -> str:
    """A network's file: `text` where it exists; else, for a name (`resnet9`), the file
    `resnet9.net` in the current folder, else the bundled model of that name (also for
    `resnet9.net` or `models/resnet9.net` given outside the checkout). Which file a name
    stood for is said on stderr; a path nothing matches stays as given, for the reader's
    error."""
    from netdsl.models import bundled

    path = Path(text)
    if path.exists():
        return text
    named = path.suffix == "" and len(path.parts) == 1
    if named and Path(f"{text}.net").is_file():
        print(f"netdsl: {text}: the file {text}.net here, not the bundled model",
              file=sys.stderr)
        return f"{text}.net"
    models = bundled()
    model = models.get(path.stem) if named or (
        path.suffix == ".net" and path.parent in (Path("."), Path("models"))) else None
    if model is None and named:
        raise argparse.ArgumentTypeError(f"no file '{text}' or '{text}.net' here, and no "
                                         f"bundled model of that name ({', '.join(models)})")
    if model is None:
        return text
    print(f"netdsl: {text}: the bundled model {model}", file=sys.stderr)
    return str(model)


def add_input_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-shape", metavar="C,H,W", type=shape,
                        default=DEFAULT_INPUT_SHAPE,
                        help="shape of one input image (default: 3,32,32, CIFAR)")


def add_rankdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="top to bottom (default) or left to right")


def add_network(parser: argparse.ArgumentParser, sized: bool = False) -> None:
    """The network, a file or -e text, its --set bindings, and (`sized`) the input shape it is
    checked against when no data says it."""
    add_bindings(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=network_file,
                        help="a .net file, or a bundled model's name (netdsl models)")
    source.add_argument("-e", "--expr", metavar="TEXT", help="the network as a string")
    if sized:
        add_input_shape(parser)


def fraction(text: str) -> float:
    value = positive(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"a fraction above 0 and below 1, got {text}")
    return value


def positive(text: str) -> float:
    value = not_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"a number above 0, got {text}")
    return value


def not_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a finite number at least 0, got {text}")
    return value


def add_truth(parser: argparse.ArgumentParser | argparse._ArgumentGroup, use: str) -> None:
    """`--table PATH --metric COLUMN`: a table of the networks' truth, which the command
    uses as `use` says."""
    parser.add_argument("--table", metavar="PATH",
                        help="a CSV table of the networks' truth (as `search --table` reads "
                        f"it): {use}")
    parser.add_argument("--metric", metavar="COLUMN", help="--table's column, e.g. cifar10")


def add_data(parser: argparse.ArgumentParser, needed: bool = True) -> argparse._ArgumentGroup:
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
    data.add_argument("--train-limit", type=count, default=0, metavar="N",
                      help="train on a random N of the training images (default: all)")
    return data


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("device").add_argument(
        "--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1")


def add_training(parser: argparse.ArgumentParser, dataset_needed: bool = True
                 ) -> list[argparse.Action]:
    """The flags of every command that trains: data, the recipe (a preset or file, and a flag
    per Recipe field over it), device, initial weights. Returns their actions (what a search
    by --table refuses is read off them)."""
    first = len(parser._actions)  # argparse lists a parser's actions only there
    data = add_data(parser, dataset_needed)
    data.add_argument("--valid-split", type=count, default=0, metavar="N",
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
    add_device(parser)
    parser.add_argument("--init-from", metavar="FILE.pt",
                        help="start from saved weights (--save-weights) of this or a wider "
                        "network: copied by node path, the first channels kept where it is wider")
    return parser._actions[first:]


def add_study(parser: argparse.ArgumentParser) -> None:
    from ..search.storage import DEFAULT_STORAGE

    parser.add_argument("--name", metavar="NAME",
                        help="the search's name in the storage (default: the .net file's name)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                        help=f"Optuna storage URL (default: {DEFAULT_STORAGE}); a PostgreSQL URL "
                        "lets several workers share one search")


def bindings(args: argparse.Namespace) -> dict[str, Any]:
    """The values --set binds by name, with the six edges --nb201 binds (an edge bound both
    ways is an error)."""
    if getattr(args, "nb201", None) is None:
        return dict(args.set)
    from ..bench.nb201 import edges

    ops = edges(args.nb201)
    both = [name for name, _ in args.set if name in ops]
    if both:  # neither may silently win
        raise NetdslError(f"--set {both[0]}=... and --nb201 both bind edge {both[0]}: give the "
                          "edges one way (--nb201 binds all six)")
    return dict([*args.set, *ops.items()])


def family_of(args: argparse.Namespace) -> Family:
    """The network's family, from its file or -e text."""
    if args.expr is not None:
        return Family(args.expr, "<-e>")
    return Family(read_text(args.file), args.file)


def network_read(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    return [("the network", args.file)]


def training_read(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """What a command that trains reads besides its outputs: the network, the recipe's file,
    the initial weights."""
    from ..train.settings import recipe_file

    return network_read(args) + [("the recipe", recipe_file(args.recipe)),
                                 ("--init-from", args.init_from)]


def recipe_of(args: argparse.Namespace):
    """The recipe and its optional mappings (`settings.recipe_from_flags`) the flags ask for."""
    from ..train.settings import RECIPE_FIELDS, recipe_from_flags

    return recipe_from_flags(args.recipe, args.unset,
                             {name: getattr(args, name) for name in RECIPE_FIELDS
                              if getattr(args, name) is not None})


def data_wanted(args: argparse.Namespace):
    """The data the flags ask for; None when no --dataset is given (a search by --table)."""
    from ..train import DataWanted

    if args.dataset is None:
        return None
    return DataWanted(args.dataset, args.data_dir, args.train_limit,
                      getattr(args, "valid_split", 0))


def training_of(args: argparse.Namespace):
    """A command's training, its flags read once (`fit.Training`)."""
    from ..train import Training

    recipe, optional = recipe_of(args)
    return Training(bindings(args), recipe, optional, data_wanted(args), args.device,
                    args.evaluate, args.init_from)


def add_recipe_flags(group: argparse._ArgumentGroup) -> None:
    """`--recipe NAME|FILE`, then one flag per Recipe field, with its help, unit and choices:
    a flag given overrides the recipe's value, one not given leaves it."""
    from netdsl_runtime.recipe import DEFAULT_PRESET, kind, presets  # no torch

    from ..train.settings import RECIPE_FIELDS, flag
    group.add_argument("--recipe", default=DEFAULT_PRESET, metavar="NAME|FILE",
                       help=f"start from a preset ({', '.join(presets())}) or a TOML file of "
                       "these settings (its key 'base' may name a preset); the flags below "
                       f"override it (default: {DEFAULT_PRESET})")
    group.add_argument("--unset", action="append", default=[], metavar="FIELD/ENTRY",
                       help="drop an entry the recipe maps, e.g. kind_lr_scale/BatchNorm2d.bias, "
                       "or a whole mapping, e.g. lr_scale (repeatable; before the flags below "
                       "add theirs)")
    for name, f in RECIPE_FIELDS.items():
        meta, value_kind = dict(f.metadata), kind(f)
        meta["help"] = meta["help"].replace("%", "%%")  # argparse formats help with %
        if f.default is None or value_kind is dict:
            seed_value = ""
        elif value_kind in (int, float):
            seed_value = f" (seed: {f.default:g})"
        else:
            seed_value = f" (seed: {f.default})"
        if value_kind is bool:
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, default=None,
                               help=meta["help"] + seed_value)
        elif value_kind is dict:
            group.add_argument(flag(name), action="append", default=None, type=_entry,
                               metavar=f"{meta['entry']}=FACTOR",
                               help=meta["help"] + " (repeatable)")
        elif value_kind is str:
            group.add_argument(flag(name), choices=meta["choices"], default=None,
                               help=meta["help"] + seed_value)
        else:
            group.add_argument(flag(name), type=value_kind, default=None,
                               metavar=(meta["unit"] or name.split("_")[-1]).upper(),
                               help=meta["help"] + seed_value)


def _entry(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        factor = float(value)
    except ValueError:
        sep = ""
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=FACTOR, e.g. layer3=2 or "
                                         "BatchNorm2d.bias=64")
    return key.strip().strip("/"), factor
