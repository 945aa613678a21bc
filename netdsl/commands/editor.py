"""The commands for editing .net files: fmt (the canonical layout, in place) and lsp (the
language server an editor starts)."""
from __future__ import annotations

from ..errors import NetdslError
from ..language import read_text
from .command import Command


class Fmt(Command):
    name = "fmt"
    help = "format .net files canonically, comments kept"
    description = ("Rewrite each .net file in the canonical layout (a statement a line, a `->` "
                   "chain written on one line kept there while it fits in 100 columns, block "
                   "bodies indented by four spaces, expressions with only the parentheses they "
                   "need), keeping its comments. A file that does not parse is reported as "
                   "`check` reports it and left untouched (exit 2). --check writes nothing and "
                   "exits 1 when a file would change.")

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help=".net files")
        parser.add_argument("--check", action="store_true",
                            help="only say which files would change (exit 1 if any)")

    def run(self, args):
        from ..files import check_rewritable, file_identity, rewrite_in_place
        from ..language.printer import format_text
        from ..language.syntax import Source, parse_statements

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


class Lsp(Command):
    name = "lsp"
    help = "the language server for editors (stdio)"
    description = ("Serve the language to an editor over stdio (the Language Server Protocol): "
                   "diagnostics as `netdsl check` gives them, shapes as inlay hints, hover, "
                   "completion, definitions, document symbols, formatting, the space's size. "
                   "Needs pip install 'netdsl[lsp]'.")

    def run(self, args):
        try:
            from ..editor.server import lsp_command
        except ImportError:
            raise NetdslError("netdsl lsp needs pygls: pip install 'netdsl[lsp]'") from None

        return lsp_command()
