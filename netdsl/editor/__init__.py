"""`netdsl lsp`, a language server for .net files over stdio, by feature: what a document's
text makes (analysis.py: parsed, bound and checked as `netdsl check` would; diagnostics and
`fmt`), what a position shows (hover.py: hover, inlay hints, costs, the code lens), completion
(completion.py) and navigation (navigation.py: definition, references, rename, symbols). These
answer without pygls; the server (server.py, a pygls `LanguageServer`, the `[lsp]` extra) turns
each request into a question for them, and protocol.py is pygls's protocol as an editor needs
it (lines, position units, refusals)."""
from .analysis import Analysis, analyse, check_choices, diagnostics_of, formatted, occurrence_at
from .completion import Completion, completions
from .hover import hover_at, shape_hints
from .navigation import references, rename_target, renamed, renamed_text

__all__ = ["Analysis", "Completion", "analyse", "check_choices", "completions",
           "diagnostics_of", "formatted", "hover_at", "occurrence_at", "references",
           "rename_target", "renamed", "renamed_text", "shape_hints"]
