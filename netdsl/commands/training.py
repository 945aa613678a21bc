"""The commands that train or score on images: run, score, supernet."""
from __future__ import annotations

from ..rank.scores import BATCH_SIZE as SCORING_BATCH, SCORES
from . import flags
from .command import Command


class Run(Command):
    name = "run"
    help = "train the network and print the per-epoch table"
    description = ("Train the network with a recipe (--recipe: the seed's, airbench94's, "
                   "airbench94_muon's or a file; every part a flag) and print the seed's "
                   "per-epoch table. Exit 0 when done, 2 for bad input, 3 when the loss stops "
                   "being finite, 130 on Ctrl-C (after writing --json).")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_training(parser)
        parser.add_argument("--runs", type=int, default=1, metavar="N",
                            help="repeat with seeds seed, seed+1, ...; prints mean and std")
        parser.add_argument("--json", metavar="FILE", help="write per-epoch records, final "
                            "metrics and the evidence (DSL text, hyperparameters, versions, "
                            "device) here")
        parser.add_argument("--save-weights", metavar="FILE.pt",
                            help="save the trained weights, keyed by node path (the last run's)")
        parser.add_argument("--quiet", action="store_true",
                            help="no per-epoch table and no progress line (a terminal shows one "
                            "during each epoch): one line per run with its result")

    def reads(self, args):
        return flags.training_read(args)

    def writes(self, args):
        return [("--json", args.json), ("--save-weights", args.save_weights)]

    def run(self, args):
        from .run import run_command

        return run_command(flags.family_of(args), flags.training_of(args), args.runs, args.json,
                           args.save_weights, args.quiet)


class Score(Command):
    name = "score"
    help = "rank networks without training: zero-cost scores"
    description = ("Score the network, or --sample N networks drawn at random from its choices, "
                   "at initialisation on one seeded batch of training images: weights, FLOPs, "
                   "grad_norm, snip, synflow (Abdelfattah et al. 2021) and naswot (Mellor et al. "
                   "2021); higher ranks higher. A score not defined for a network is nan, with "
                   "the reason.")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_data(parser)
        flags.add_device(parser)
        parser.add_argument("--proxy", default=",".join(SCORES), metavar="NAME,...",
                            help=f"the scores (default: all of {', '.join(SCORES)})")
        parser.add_argument("--sample", type=flags.sample, metavar="N|all",
                            help="score N different networks drawn at random from the file's "
                            "choices, or all of them")
        parser.add_argument("--table", metavar="PATH",
                            help="a CSV table of the networks' truth (as `search --table` reads "
                            "it): beside the scores, each score's Kendall tau, Spearman rho and "
                            "top-10%% overlap against its --metric")
        parser.add_argument("--metric", metavar="COLUMN", help="--table's column, e.g. cifar10")
        parser.add_argument("--batch-size", type=int, default=SCORING_BATCH, metavar="B",
                            help=f"images in the scoring batch (default: {SCORING_BATCH})")
        parser.add_argument("--seed", type=flags.seed, default=0,
                            help="draws the batch, the networks and their initial weights")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def reads(self, args):
        return flags.network_read(args) + [("--table", args.table)]

    def run(self, args):
        from .scoring import score_command

        return score_command(flags.family_of(args), flags.bindings(args), flags.data_wanted(args),
                             device=args.device, proxy=args.proxy, sample=args.sample,
                             table=args.table, metric=args.metric, batch_size=args.batch_size,
                             seed=args.seed, as_json=args.json)


class Supernet(Command):
    name = "supernet"
    help = "train one weight-sharing supernet of the choices"
    description = ("Train a supernet of the network's choices (single-path one-shot, Guo et al. "
                   "2020): one module holding every layer of every network of the space, by node "
                   "path at its widest; each training step trains networks drawn at random "
                   "(--sampling), with the recipe. Then `netdsl search FILE --supernet FILE.pt` "
                   "ranks networks by their accuracy with its weights (BatchNorm recalibrated), "
                   "and `netdsl run --init-from FILE.pt` starts a network from them.")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_training(parser)
        parser.add_argument("-o", "--output", required=True, metavar="FILE.pt",
                            help="where to save the supernet")
        parser.add_argument("--sampling", choices=("uniform", "fair"), default="uniform",
                            help="uniform: each step trains one network, each choice drawn "
                            "uniformly; fair: each step deals every choice point's options in a "
                            "random order to as many networks as the largest point has options, "
                            "each trained on its share of the batch, so every option trains on "
                            "as many images (default: uniform)")

    def reads(self, args):
        return flags.training_read(args)

    def writes(self, args):
        return [("-o", args.output)]

    def run(self, args):
        from .supernet import supernet_command

        return supernet_command(flags.family_of(args), flags.training_of(args), args.output,
                                args.sampling)
