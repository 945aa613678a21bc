"""The commands that train or score on images: run, score, supernet."""
from __future__ import annotations

from ..errors import NetdslError
from ..rank.scores import BATCH_SIZE as SCORING_BATCH, NETWORK_SCORES
from ..supernet import METHODS
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
                   "grad_norm, snip, synflow (Abdelfattah et al. 2021), naswot (Mellor et al. "
                   "2021), meco (Jiang et al. 2023) and AZ-NAS's expressivity, progressivity "
                   "and trainability (Lee & Ham 2024); higher ranks higher. A score not "
                   "defined for a network is nan, with the reason.")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_data(parser)
        flags.add_device(parser)
        parser.add_argument("--proxy", default=",".join(NETWORK_SCORES), metavar="NAME,...",
                            help=f"the scores (default: all of {', '.join(NETWORK_SCORES)}); "
                            "az_nas, AZ-NAS's rank aggregation of flops, expressivity, "
                            "progressivity and trainability over the networks scored, and "
                            "rank(A,B,...) the same of any scores")
        parser.add_argument("--sample", type=flags.sample, metavar="N|all",
                            help="score N different networks drawn at random from the file's "
                            "choices, or all of them")
        flags.add_truth(parser, "beside the scores, each score's Kendall tau, Spearman rho and "
                        "top-10%% overlap against its --metric")
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
    help = "train one weight-sharing supernet of the choices, or search them by gradient"
    description = ("Train a supernet of the network's choices (single-path one-shot, Guo et al. "
                   "2020): one module holding every layer of every network of the space, by node "
                   "path at its widest; each training step trains networks drawn at random "
                   "(--sampling), with the recipe. Then `netdsl search FILE --supernet FILE.pt` "
                   "ranks networks by their accuracy with its weights (BatchNorm recalibrated), "
                   "and `netdsl run --init-from FILE.pt` starts a network from them. "
                   "With --method darts, gdas, beta-darts or drnas, search the op, item and "
                   "inputs choices by gradient instead: every option computed and mixed by "
                   "architecture weights that train on --arch-split of the training images, in "
                   "turn with "
                   "the network's weights on the rest; prints the network found as --set "
                   "values and as text. Exit 0 when done, 2 for bad input, 3 when the loss "
                   "stops being finite, 130 when interrupted.")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_training(parser)
        parser.add_argument("-o", "--output", metavar="FILE.pt",
                            help="where to save the supernet (--method spos, which needs it)")
        parser.add_argument("--sampling", choices=("uniform", "fair"), default="uniform",
                            help="uniform: each step trains one network, each choice drawn "
                            "uniformly; fair: each step deals every choice point's options in a "
                            "random order to as many networks as the largest point has options, "
                            "each trained on its share of the batch, so every option trains on "
                            "as many images (default: uniform; --method spos)")
        search = parser.add_argument_group(
            "differentiable search (--method darts, gdas, beta-darts, drnas)")
        search.add_argument("--method", choices=("spos", *METHODS), default="spos",
                            help="spos: the single-path supernet, saved with -o; darts: every "
                            "option mixed by the softmax of its weights (Liu et al. 2019); gdas: "
                            "one option per point per step, Gumbel-softmax, temperature 10 -> "
                            "0.1 (Dong & Yang 2019); beta-darts: darts with beta-decay, the "
                            "logsumexp of the weights in the architecture's loss (Ye et al. "
                            "2022); drnas: mixing weights drawn from a Dirichlet (Chen et al. "
                            "2021); these two do not collapse to parameter-free ops as DARTS "
                            "does (default: spos)")
        search.add_argument("--arch-split", type=flags.fraction, default=0.5, metavar="FRACTION",
                            help="the fraction of the training images the architecture trains "
                            "on, held out from the network's weights (default: 0.5)")
        search.add_argument("--arch-lr", type=flags.positive, default=3e-4, metavar="LR",
                            help="Adam's learning rate for the architecture (default: 3e-4)")
        search.add_argument("--arch-weight-decay", type=flags.not_negative, default=1e-3,
                            metavar="DECAY", help="Adam's weight decay for the architecture "
                            "(default: 1e-3)")
        search.add_argument("--second-order", action="store_true",
                            help="the architecture's gradient through one unrolled weight step "
                            "(DARTS's second order; about 3x the steps' cost); default: first "
                            "order")
        search.add_argument("--json", metavar="PATH",
                            help="write the search's record: alphas per epoch, the network "
                            "found, its --table value")
        flags.add_truth(search, "the found network's --metric is printed and recorded")

    def reads(self, args):
        return flags.training_read(args) + [("--table", args.table)]

    def writes(self, args):
        return [("-o", args.output), ("--json", args.json)]

    def run(self, args):
        given = {"-o": args.output, "--sampling": args.sampling != "uniform"} \
            if args.method != "spos" else {
                "--json": args.json, "--table": args.table, "--metric": args.metric,
                "--second-order": args.second_order}
        wrong = [flag for flag, value in given.items() if value]
        if wrong:
            raise NetdslError(f"bad option: {wrong[0]} is not taken by --method {args.method}")
        if args.method == "spos":
            if not args.output:
                raise NetdslError("bad option: --method spos saves its supernet: give -o "
                                  "FILE.pt")
            from .supernet import supernet_command

            return supernet_command(flags.family_of(args), flags.training_of(args),
                                    args.output, args.sampling)
        import netdsl_runtime as runtime

        from .supernet import differentiable_command

        steps = runtime.ArchitectureSteps(lr=args.arch_lr, weight_decay=args.arch_weight_decay,
                                          second_order=args.second_order)
        return differentiable_command(flags.family_of(args), flags.training_of(args),
                                      args.method, steps, args.arch_split, args.json,
                                      args.table, args.metric)

