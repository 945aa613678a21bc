"""The `netdsl` command line: the parser, built by walking the commands (`netdsl.commands`),
and `main`, which refuses an output that is an input before any work, runs the command and
turns an error into a message and an exit code."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .commands import COMMANDS
from .commands.flags import Parser, flag_mention
from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, ArgumentError, NetdslError
from .files import refuse_clashes

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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="netdsl", description="Describe, draw and check small convolutional "
                    "networks written in the netdsl language.", epilog=_EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"netdsl {__version__}")
    subparsers = parser.add_subparsers(dest="name", required=True, metavar="COMMAND",
                                       parser_class=Parser)
    for command in COMMANDS:
        command.add_arguments(subparsers.add_parser(command.name, help=command.help,
                                                    description=command.description))
        subparsers.choices[command.name].set_defaults(command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        refuse_clashes(args.command.writes(args), args.command.reads(args))
        return args.command.run(args)
    except NetdslError as e:
        # the library names the arguments it was given; here they came from flags
        message = e.words(flag_mention) if isinstance(e, ArgumentError) else str(e)
        print(f"netdsl: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `netdsl show ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # runs record their own interruption; this is any other moment
        print("netdsl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
