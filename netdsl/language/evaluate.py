"""Evaluating the DSL's expressions and matching a call's arguments to parameters.

DSL text is data: expressions are evaluated by this small tree walker, never by eval/exec.
Errors are located through a `Frame`, the chain of calls that led to the expression.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import NetdslError
from ..graph import REQUIRED, is_number
from .syntax import (MAX_NUMBER, PRELUDE, Binary, Call, CallValue, Const, Expr, Name, Source,
                     Unary)

# The calls that led to a place: (text, (line, column), callee) for each, outermost first.
# Locations are made from it only when an error is raised: parsing is on a search's hot path.
Frame = tuple[tuple[Source, tuple[int, int], str], ...]


def moved(frame: Frame, pos: tuple[int, int]) -> Frame:
    """`frame` with its innermost place moved to `pos` in the same text."""
    source, _, callee = frame[-1]
    return frame[:-1] + ((source, pos, callee),)


def error_at(message: str, frame: Frame) -> NetdslError:
    """An error located at the innermost call in the user's text; deeper calls become a note."""
    user = [i for i, (source, _, _) in enumerate(frame) if source.name != PRELUDE]
    at = user[-1] if user else len(frame) - 1
    deeper = [callee for _, _, callee in frame[at + 1:]]
    notes = (f"    (inside {' -> '.join(deeper)})",) if deeper else ()
    location = frame[at][0].at(frame[at][1]) if frame else None
    return NetdslError(message, location, notes)


_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
               "/": lambda a, b: a / b, "//": lambda a, b: a // b}


def value_of(expr: Expr, env: dict, frame: Frame) -> Any:
    """The value of `expr`; `frame`'s innermost entry is in the text `expr` comes from."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Name):
        if expr.name not in env:
            known = ", ".join(sorted(env)) or "none"
            raise error_at(f"unknown name '{expr.name}' (names here: {known})",
                           moved(frame, expr.pos))
        return env[expr.name]
    if isinstance(expr, CallValue):
        raise error_at(f"'{expr.call.name}(...)' is a call, not a value: calls are "
                       "options of a choice, or what a param is drawn from",
                       moved(frame, expr.pos))
    if isinstance(expr, Unary):
        value = value_of(expr.operand, env, frame)
        if expr.op == "not":
            if not isinstance(value, bool):
                raise error_at(f"'not' needs true or false, got {value!r}", moved(frame, expr.pos))
            return not value
        return -_number(value, "-", frame, expr.pos)
    assert isinstance(expr, Binary), expr  # the one kind of expression left
    left = _number(value_of(expr.left, env, frame), expr.op, frame, expr.left.pos)
    right = _number(value_of(expr.right, env, frame), expr.op, frame, expr.right.pos)
    if expr.op in ("/", "//") and right == 0:
        raise error_at("division by zero", moved(frame, expr.right.pos))
    try:
        result = _ARITHMETIC[expr.op](left, right)
    except OverflowError:
        result = math.inf
    return _number(result, expr.op, frame, expr.pos)


def _number(value: Any, op: str, frame: Frame, pos: tuple[int, int]):
    if not is_number(value):
        raise error_at(f"'{op}' needs numbers, got {value!r}", moved(frame, pos))
    if abs(value) > MAX_NUMBER:
        raise error_at("number too large", moved(frame, pos))
    return value


def bind_arguments(callee: str, params: tuple[tuple[str, Any], ...], switches: frozenset[str],
                   call: Call, env: dict, frame: Frame) -> dict:
    """Match a call's arguments to `params` ((name, default)). A bare name that names a
    switch parameter of the callee is a flag: it sets that parameter to true."""
    values: dict[str, Any] = {}
    next_positional = 0
    for arg in call.args:
        if arg.name is None and isinstance(arg.expr, Name) and arg.expr.name in switches:
            name, value = arg.expr.name, True
        elif arg.name is None:
            if isinstance(arg.expr, Name) and arg.expr.name not in env:
                raise error_at(f"unknown name '{arg.expr.name}': not a parameter of this "
                               f"network, nor a switch of {callee}"
                               + (f" ({', '.join(sorted(switches))})" if switches else ""),
                               moved(frame, arg.pos))
            if next_positional >= len(params):
                names = ", ".join(name for name, _ in params) or "none"
                raise error_at(f"{callee} takes at most {len(params)} argument"
                               f"{'s' if len(params) != 1 else ''} ({names})",
                               moved(frame, arg.pos))
            name = params[next_positional][0]
            next_positional += 1
            value = value_of(arg.expr, env, frame)
        else:
            name = arg.name
            if not any(name == known for known, _ in params):
                names = ", ".join(known for known, _ in params) or "none"
                raise error_at(f"{callee} has no parameter '{name}' (it takes: {names})",
                               moved(frame, arg.pos))
            value = value_of(arg.expr, env, frame)
        if name in values:
            raise error_at(f"{callee}: argument '{name}' is given twice", moved(frame, arg.pos))
        values[name] = value
    for name, default in params:
        if name not in values:
            if default is REQUIRED:
                raise error_at(f"{callee} needs argument '{name}'", frame)
            values[name] = default
    return values
