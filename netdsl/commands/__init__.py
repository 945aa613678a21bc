"""The `netdsl` commands, one object each, as Optuna's CLI has them. `netdsl.cli` builds its
parser by walking `COMMANDS`, checks what each writes against what it reads, and calls `run`.
Heavy modules (torch, Optuna) load inside `run`, only for the command that needs them.

The rule: a command holds its flags and its printing (here: the objects, flags.py, and the
work of run, score and supernet in run.py, scoring.py and supernet.py); the library
(language, graph, module, train, rank, bench, search) holds what Python can call, takes typed
values (`train.Training`, `search.options.SearchOptions`), never an argparse namespace, and
imports nothing from here (tests/test_architecture.py). So the library's errors speak of no
flag: one about an argument names the parameter it was passed as (`device='cuda:9'`, an
`errors.ArgumentError`), and the command line names the flag that gave it (`--device cuda:9`:
`flags.flag_mention`, through the one table `flags.FLAG_OF`, in `cli.main`)."""
from __future__ import annotations

from .command import Command
from .editor import Fmt, Lsp
from .network import Check, Diff, Draw, Export, Models, Show, Space
from .search import Best, Plot, Search, Trial, Trials
from .training import Run, Score, Supernet

# In the order `netdsl --help` lists them.
COMMANDS: tuple[Command, ...] = (Show(), Draw(), Export(), Fmt(), Diff(), Space(), Check(),
                                 Models(), Run(), Score(), Supernet(), Lsp(), Search(), Trial(),
                                 Trials(), Best(), Plot())
