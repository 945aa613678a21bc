"""Which written name refers to what: the occurrences of parameters, blocks, labels and block
parameters in a text, each with what it names, for an editor's references and rename.

The rules are the binder's (`expand.py`), read without binding, so a text that parses but does
not bind still has its names: in a block's body a block parameter hides a file parameter of
the same name; a bare name among a call's arguments that is a switch of the callee sets it; a
call of a name that is neither a primitive, a block nor a parameter is a stage, and its name is
the stage's label (`prep(prep)`: a stage labelled `prep`, given the parameter `prep`). A path
after `<-` names a label of its own body, then labels of the block that label calls
(`layer1/residual/res2`); `..` inside a block leaves for a caller the text does not fix, so
what follows it is not resolved.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..graph import PRIMITIVES, SEP
from .choices import SPACES
from .expand import prelude
from .syntax import Binary, Block, Call, CallValue, Expr, InputChoice, Item, Name, Param, Unary

TOP = ""  # the scope of the file's own top level; a block's body has the block's name


@dataclass(frozen=True)
class Symbol:
    """What a name refers to: a "param", "block", "primitive", "label" or "formal" (a block's
    parameter); labels and formals belong to a `scope` (TOP or a block's name)."""

    kind: str
    name: str
    scope: str = TOP


@dataclass(frozen=True)
class Occurrence:
    symbol: Symbol
    line: int    # 1-based, as the parser counts
    column: int
    declares: bool  # where the symbol is declared, not a use of it
    called: bool = False  # the name of a call (`e(c)`, a bare item `e`), not a value's


def occurrences(statements: list, blocks: dict[str, Block]) -> list[Occurrence]:
    """Every name in `statements` (a text's, parsed) that refers to a symbol, in the text's
    order; `blocks` are the blocks the text sees (the prelude's and its own), whose bodies
    resolve paths that go into a block."""
    return sorted(_Walk(statements, blocks).found, key=lambda o: (o.line, o.column))


# How alike a stage's name and a block's are (difflib's ratio) for the stage to be read as a slip:
# one letter off a name of four or more (`hed`, `haed` for `head`), not `layer1` for `stage`.
SLIP = 0.75


def misread_stages(found: list[Occurrence], blocks) -> list[tuple[Occurrence, str]]:
    """Each stage among `found` whose name is close to one of `blocks`' names (`hed(10)` for
    `head(10)`), with what to tell: read as a stage, it makes a conv stage silently."""
    names = sorted(blocks)
    slips = []
    for o in found:
        if o.symbol.kind == "label" and o.declares and o.called:  # a stage's name
            close = difflib.get_close_matches(o.symbol.name, names, n=1, cutoff=SLIP)
            if close:
                slips.append((o, f"read as a stage named {o.symbol.name}; did you mean "
                                  f"{close[0]}?"))
    return slips


def declared_here(symbol: Symbol) -> bool:
    """Whether the text itself declares `symbol` (it can be renamed there): not a primitive,
    nor the prelude's block, label or block parameter."""
    if symbol.kind == "primitive":
        return False
    owner = symbol.name if symbol.kind == "block" else symbol.scope
    return owner == TOP or owner not in prelude()


class _Walk:
    def __init__(self, statements: list, blocks: dict[str, Block]):
        self.blocks = blocks
        params = [s for s in statements if isinstance(s, Param)]
        self.params = {param.name for param in params}
        # Parameters whose value is a block or primitive (`param e = zero`, `choice(zero,
        # conv)`): calling one calls that; calling any other name that is no callable is a stage.
        self.op_params = {param.name for param in params if self.names_callable(param.expr)}
        self.found: list[Occurrence] = []
        top_items = [s for s in statements if isinstance(s, Item)]
        for statement in statements:
            if isinstance(statement, Param):
                self.add("param", statement.name, statement.pos, declares=True)
                self.expr(statement.expr, None)
            elif isinstance(statement, Block):
                self.add("block", statement.name, statement.pos, declares=True)
                for formal in statement.formals:
                    self.add("formal", formal.name, formal.pos, statement.name, declares=True)
                    if formal.default is not None:  # evaluated among the file's parameters
                        self.expr(formal.default, None)
                items = [s for s in statement.body if isinstance(s, Item)]
                for item in items:
                    self.item(item, statement, items)
        for item in top_items:
            self.item(item, None, top_items)

    def add(self, kind: str, name: str, pos: tuple[int, int], scope: str = TOP,
            declares: bool = False, called: bool = False) -> None:
        self.found.append(Occurrence(Symbol(kind, name, scope), pos[0], pos[1], declares,
                                     called))

    def scope_of(self, block: Block | None) -> str:
        return TOP if block is None else block.name

    def value_name(self, name: str, pos: tuple[int, int], block: Block | None,
                   called: bool = False) -> None:
        """A name where a value goes (or, `called`, a parameter naming a callable, called):
        the block's parameter, else the file's, else a callable given by name (`param e =
        zero`, an option of a choice)."""
        if block is not None and any(f.name == name for f in block.formals):
            self.add("formal", name, pos, block.name, called=called)
        elif name in self.params:
            self.add("param", name, pos, called=called)
        elif name in PRIMITIVES:
            self.add("primitive", name, pos, called=called)
        elif name in self.blocks:
            self.add("block", name, pos, called=called)

    def expr(self, expr: Expr | None, block: Block | None) -> None:
        if isinstance(expr, Name):
            self.value_name(expr.name, expr.pos, block)
        elif isinstance(expr, Unary):
            self.expr(expr.operand, block)
        elif isinstance(expr, Binary):
            self.expr(expr.left, block)
            self.expr(expr.right, block)
        elif isinstance(expr, CallValue):
            self.call(expr.call, block, labelled=True)

    def call(self, call: Call, block: Block | None, labelled: bool) -> None:
        """A call's name and arguments; an unlabelled call of an unknown name is a stage, whose
        name is its label."""
        callee: Block | None = None
        switches: frozenset[str] = frozenset()
        if call.name in SPACES:  # choice(...), range(...): options and values, no callee
            pass
        elif call.name in PRIMITIVES:
            self.add("primitive", call.name, call.pos, called=True)
            switches = PRIMITIVES[call.name].switches
        elif call.name in self.blocks:
            self.add("block", call.name, call.pos, called=True)
            callee = self.blocks[call.name]
        elif self.is_stage(call.name, labelled, block):
            self.add("label", call.name, call.pos, self.scope_of(block), declares=True,
                     called=True)
            callee = self.blocks["stage"]
        else:  # a parameter naming a block or primitive: `e(c)`
            self.value_name(call.name, call.pos, block, called=True)
        if callee is not None:
            switches = callee.switches
        for arg in call.args:
            if arg.name is not None and callee is not None:
                self.add("formal", arg.name, arg.pos, callee.name)
            if arg.name is None and isinstance(arg.expr, Name) and arg.expr.name in switches:
                if callee is not None:
                    self.add("formal", arg.expr.name, arg.pos, callee.name)
                continue
            self.expr(arg.expr, block)

    def item(self, item: Item, block: Block | None, body: list[Item]) -> None:
        scope = self.scope_of(block)
        if item.label is not None and item.label_pos is not None:  # given together
            self.add("label", item.label, item.label_pos, scope, declares=True)
        self.call(item.call, block, labelled=item.label is not None)
        self.expr(item.repeat, block)
        self.expr(item.condition, block)
        if isinstance(item.inputs, InputChoice):
            self.expr(item.inputs.k, block)
        refs = item.inputs.refs if isinstance(item.inputs, InputChoice) else item.inputs or []
        for ref, pos in zip(refs, item.ref_positions):
            self.path(ref, pos, block, body)

    def path(self, ref: str, pos: tuple[int, int], block: Block | None,
             body: list[Item]) -> None:
        """The labels a path after `<-` names, one part at a time."""
        column = pos[1]
        owners: list[tuple[Block | None, list[Item]]] = [(block, body)]
        for part in ref.split(SEP):
            owner, items = owners[-1]
            if part == "..":
                if len(owners) == 1:  # above the body written here: the caller's, not fixed
                    return
                owners.pop()
            else:
                item = self.labelled(part, items, owner)
                if item is None:
                    return
                self.add("label", _label_of(item), (pos[0], column), self.scope_of(owner))
                inner = self.callee(item, owner)
                if inner is None:
                    return
                owners.append((inner, [s for s in inner.body if isinstance(s, Item)]))
            column += len(part) + len(SEP)

    def names_callable(self, expr: Expr) -> bool:
        """Whether a parameter's value is a block or primitive given by name."""
        if isinstance(expr, Name):
            return expr.name not in self.params and (
                expr.name in PRIMITIVES or expr.name in self.blocks)
        return isinstance(expr, CallValue) and expr.call.name == "choice" and any(
            self.names_callable(arg.expr) for arg in expr.call.args)

    def is_stage(self, name: str, labelled: bool, block: Block | None) -> bool:
        """Whether a call of `name` in `block`'s body (None: the top level) is a stage: it is
        unlabelled, and `name` is no primitive, block, choice, nor a parameter naming one."""
        return not labelled and name not in PRIMITIVES and name not in self.blocks \
            and name not in SPACES and name not in self.op_params \
            and not (block is not None and any(f.name == name for f in block.formals))

    def callee(self, item: Item, block: Block | None) -> Block | None:
        """The block an item calls, when the text fixes it (not a choice or a parameter)."""
        if item.call.name in self.blocks:
            return self.blocks[item.call.name]
        return self.blocks["stage"] if self.is_stage(
            item.call.name, item.label is not None, block) else None

    def labelled(self, part: str, items: list[Item], block: Block | None) -> Item | None:
        """The item of `items` (`block`'s body) whose label (or stage name) is `part`, or that
        makes `part` as a repeat (`extra_2` of `extra: ... * 3`)."""
        for item in items:
            label = item.call.name if self.is_stage(item.call.name, item.label is not None,
                                                    block) else item.label
            if label is not None and (part == label or item.repeat is not None and re.fullmatch(
                    re.escape(label) + r"_\d+", part)):
                return item
        return None


def _label_of(item: Item) -> str:
    return item.label if item.label is not None else item.call.name
