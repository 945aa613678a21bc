"""What a `netdsl` command is."""
from __future__ import annotations

import argparse
from pathlib import Path


class Command:
    """One command: `name`, `help` (its line in `netdsl --help`), `description`; its flags
    (`add_arguments`); the files it reads and writes, as (what, path) pairs (`reads`,
    `writes`: refused before any work when an output is an input or another output); and its
    work (`run`: the flags turned into typed values once, handed to the module that does it,
    the exit code returned)."""
    name = ""
    help = ""
    description = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def reads(self, args: argparse.Namespace) -> list[tuple[str, str | Path | None]]:
        return []

    def writes(self, args: argparse.Namespace) -> list[tuple[str, str | Path | None]]:
        return []

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError

