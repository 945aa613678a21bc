"""The commands of a search: search (and NNI's trial), and the views of a stored search:
trials, best, plot (which also plots `netdsl run --json` records)."""
from __future__ import annotations

from pathlib import Path

from ..errors import NetdslError
from ..files import STORAGE
from . import flags
from .command import Command


class Search(Command):
    name = "search"
    help = "search a parameterised network and its recipe"
    description = ("Sample the network's own choices (choice(...), range(...), logrange(...) in "
                   "its text) and the search space of --space (NNI's search_space.json format) "
                   "with an Optuna tuner; each trial binds the network's parameters and trainer "
                   "settings, trains with the shared trainer on data loaded once, and is stored, "
                   "so the same command resumes. Trials whose network fails, diverges or runs "
                   "out of memory are recorded as failed.")

    def add_arguments(self, parser):
        from ..search.options import OBJECTIVES, PRUNERS, TUNERS
        from ..train.settings import search_keys

        flags.add_network(parser)
        parser.add_argument("--space", metavar="SPACE.json",
                            help="NNI's search_space.json format; keys bind the network's "
                            "parameters and choices or trainer settings ("
                            + ", ".join(search_keys()) + "). Without it, the choices the .net "
                            "file declares are searched")
        parser.add_argument("--trials", type=int, required=True, metavar="N",
                            help="the search's total budget: a finished search adds nothing when "
                            "run again, an interrupted one continues up to N")
        flags.add_study(parser)
        parser.add_argument("--tuner", choices=TUNERS, default="tpe",
                            help="Optuna sampler (default: tpe); evolution: regularized "
                            "evolution (Real et al. 2019); predictor: a Gaussian process over "
                            "the choices and each network's FLOPs picks the next network")
        parser.add_argument("--population", type=int, default=10, metavar="P",
                            help="evolution: the population, the P newest finished trials; the "
                            "first P trials are drawn at random (default: 10)")
        parser.add_argument("--tournament", type=int, default=3, metavar="S",
                            help="evolution: how many of the population are sampled; the best "
                            "of them is mutated in one choice (default: 3)")
        parser.add_argument("--feature", default="flops", metavar="SCORE",
                            help="predictor: the score of each network its model reads beside "
                            "the values (a score of netdsl score: flops and weights as their "
                            "log; another from one batch of --dataset's images; default: "
                            "flops, read off the network)")
        parser.add_argument("--prefilter", metavar="PROXY:K",
                            help="draw K candidate networks a trial from the tuner, score each "
                            "with a zero-cost proxy (see netdsl score) and train the "
                            "best-scored; e.g. synflow:8")
        parser.add_argument("--supernet", metavar="FILE.pt",
                            help="rank each network by its accuracy with this supernet's weights "
                            "(netdsl supernet), BatchNorm recalibrated, instead of training it")
        parser.add_argument("--table", metavar="PATH",
                            help="look each network's --metric up in this CSV table (.csv, "
                            ".csv.xz, .csv.gz: a row a network, named by NAS-Bench-201's arch "
                            "column or a column per choice point) instead of training it; no "
                            "--dataset needed")
        parser.add_argument("--metric", metavar="COLUMN",
                            help="--table's column to maximise, e.g. cifar10")
        parser.add_argument("--report", metavar="COLUMN",
                            help="--table's column to report as each network's test accuracy "
                            "(trials, best, the closing lines), never shown to the tuner: "
                            "NAS-Bench-201's protocol selects on --metric cifar10_valid12 and "
                            "reports --report cifar10")
        parser.add_argument("--pruner", choices=PRUNERS, default="none",
                            help="stop poor trials early on their per-epoch accuracy (default: "
                            "none)")
        parser.add_argument("--objectives", choices=OBJECTIVES, default="accuracy",
                            help="maximise accuracy, or also minimise training time or FLOPs "
                            "(a Pareto front)")
        parser.add_argument("--timeout", type=float, metavar="SECONDS",
                            help="stop starting new trials after this long")
        parser.add_argument("--resume", action="store_true",
                            help="continue a stored search (an error if there is none); running "
                            "the same command again does the same")
        parser.set_defaults(training_actions=flags.add_training(parser, dataset_needed=False))

    def reads(self, args):
        return flags.training_read(args) + [("--space", args.space),
                                            ("--supernet", args.supernet),
                                            ("--table", args.table)]

    def writes(self, args):
        from ..search.storage import storage_file

        return [(STORAGE, storage_file(args.storage))]

    def run(self, args):
        from ..search.loop import search_command
        from ..search.options import Objectives, SearchOptions

        options = SearchOptions(
            trials=args.trials, storage=args.storage, name=args.name, space=args.space,
            tuner=args.tuner, population=args.population, tournament=args.tournament,
            prefilter=args.prefilter, feature=args.feature, supernet=args.supernet,
            table=args.table,
            metric=args.metric, report=args.report, pruner=args.pruner,
            objectives=Objectives.parse(args.objectives),
            timeout=args.timeout, resume=args.resume, training_flags=_training_only(args))
        return search_command(flags.family_of(args), flags.training_of(args), options)


# What a search by --table reads of the training flags: the data (a prefilter's images), the
# device, and the seed (it draws the trials). It refuses any other given.
TABLE_READS = ("dataset", "data_dir", "train_limit", "device", "seed")


def _training_only(args) -> tuple[str, ...]:
    """The flags given that only a training or a supernet's ranking reads, which a search by
    --table refuses: the search's own, then every flag `add_training` added that a table
    search does not read (a flag added there later is refused without a line here)."""
    given = [("--supernet", args.supernet), ("--pruner", args.pruner != "none"),
             ("--objectives accuracy,time", args.objectives == "accuracy,time"),
             ("--space", args.space)]
    given += [(action.option_strings[0], getattr(args, action.dest) != action.default)
              for action in args.training_actions if action.dest not in TABLE_READS]
    return tuple(name for name, is_given in given if is_given)


class Trial(Command):
    name = "trial"
    help = "run one NNI trial (NNI's trialCommand)"
    description = ("Run one trial under NNI: values from nni.get_next_parameter() bind the "
                   "network's parameters and trainer settings; the validation accuracy goes to "
                   "nni.report_intermediate_result after each epoch and to "
                   "nni.report_final_result at the end. See models/nni/config.yml.")

    def add_arguments(self, parser):
        flags.add_network(parser)
        flags.add_training(parser)

    def reads(self, args):
        return flags.training_read(args)

    def run(self, args):
        from ..search.nni import trial_command

        return trial_command(flags.family_of(args), flags.training_of(args))


class Trials(Command):
    name = "trials"
    help = "list a search's trials"
    description = ("List a search's trials, a line each: number, state, accuracy, training "
                   "seconds and the values drawn (what varies). With a trial's NUMBER: that "
                   "trial whole, its DSL text and its trainer flags.")

    def add_arguments(self, parser):
        parser.add_argument("number", nargs="?", type=flags.count, metavar="NUMBER",
                            help="show this trial whole")
        flags.add_study(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--csv", metavar="FILE", help="write the trials as CSV")

    def reads(self, args):
        from ..search.storage import storage_file

        return [("the storage", storage_file(args.storage))]

    def writes(self, args):
        return [("--csv", args.csv)]

    def run(self, args):
        from ..search.study import print_trials, stored_study

        print_trials(stored_study(args.storage, args.name), args.number, args.json, args.csv)
        return 0


class Best(Command):
    name = "best"
    help = "print the best trial's DSL text"
    description = ("Print the best trial's DSL text, ready for `netdsl run -e`; for two "
                   "objectives, that of the Pareto front's best at --objective (stderr says "
                   "which trial it is).")

    def add_arguments(self, parser):
        flags.add_study(parser)
        parser.add_argument("--flags", action="store_true",
                            help="print the trainer flags of the best trial instead: "
                            "netdsl run -e \"$(netdsl best)\" $(netdsl best --flags) --dataset "
                            "...")
        parser.add_argument("--objective", choices=("accuracy", "time", "flops"),
                            help="for two objectives: the Pareto front's trial best at this one "
                            "(default: accuracy)")

    def run(self, args):
        """Print one trial's DSL text, or with --flags the `netdsl run` flags of its training,
        so that `netdsl run -e "$(netdsl best)" $(netdsl best --flags)` trains it again: the
        best trial, or for two objectives the Pareto front's best at --objective (which trial
        of the front that is, stderr says)."""
        from ..search.record import Record
        from ..search.study import picked, stored_study

        trial = picked(stored_study(args.storage, args.name), args.objective)
        print(Record(trial).get("flags" if args.flags else "dsl").rstrip())
        return 0


class Plot(Command):
    name = "plot"
    help = ("plot a search (history, accuracy against time, parameter importance) or runs' "
            "training curves")
    description = ("Without RUN.json: write history.png (optimisation history), "
                   "accuracy_time.png (accuracy against training time, with the Pareto front) "
                   "and importance.png (parameter importance) of a search into a folder. With "
                   "`netdsl run --json` records: their training curves, loss and validation "
                   "accuracy per epoch, every run overlaid, in one image. With one record of "
                   "`netdsl supernet --method ... --json`: its choice points' probabilities "
                   "over the epochs, one panel a point (default: alphas.png).")

    def add_arguments(self, parser):
        parser.add_argument("runs", nargs="*", metavar="RUN.json",
                            help="records of `netdsl run --json` to plot as training curves")
        flags.add_study(parser)
        parser.add_argument("-o", "--output", metavar="DIR|FILE",
                            help="a search's: the folder for its images (default: plots); "
                            "runs': the image, .png, .svg or .pdf (default: curves.png)")

    @staticmethod
    def output(args) -> Path:
        from ..supernet.alphas import is_search_record

        alphas = len(args.runs) == 1 and is_search_record(Path(args.runs[0]))
        return Path(args.output or ("alphas.png" if alphas else "curves.png" if args.runs
                                    else "plots"))

    def reads(self, args):
        from ..search.storage import storage_file

        if args.runs:
            return [(f"the record {run}", run) for run in args.runs]
        return [("the storage", storage_file(args.storage))]

    def writes(self, args):
        from ..search.study import PLOTS

        if args.runs:
            return [("-o", self.output(args))]
        return [("-o", self.output(args) / name) for name in PLOTS]

    def run(self, args):
        if not args.runs:
            from ..search.study import plot_study, stored_study

            plot_study(stored_study(args.storage, args.name), self.output(args))
            return 0
        from ..supernet.alphas import is_search_record, plot_alphas
        from ..train.curves import plot_runs

        searches = [run for run in args.runs if is_search_record(Path(run))]
        if searches and len(args.runs) > 1:
            raise NetdslError(f"{searches[0]}: a differentiable search's record is plotted "
                              "alone (its alphas, one panel a point), not with other records")
        if searches:
            print(f"wrote {plot_alphas(Path(searches[0]), self.output(args))}")
            return 0
        print(f"wrote {plot_runs([Path(run) for run in args.runs], self.output(args))}")
        return 0
