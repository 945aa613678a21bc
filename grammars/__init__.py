"""Data package: the lark grammar and the prelude of built-in blocks (installed as netdsl.grammars)."""
