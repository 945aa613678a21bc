"""The `netdsl` commands, one object each, as Optuna's CLI has them. `netdsl.cli` builds its
parser by walking `COMMANDS`, checks what each writes against what it reads, and calls `run`.
Heavy modules (torch, Optuna) load inside `run`, only for the command that needs them."""
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
