"""Bug-injecting mutation operators on Python source (libcst, so formatting is kept).

An operator maps one syntax node to the nodes it may become (usually one, sometimes
two, e.g. ``n - 1`` and ``n + 1``). A *site* is one (node, alternative) pair; sites are
numbered in a fixed traversal order, so ``(path, operator, index)`` names a mutant
reproducibly. Code under ``if __name__ == "__main__":`` and ``if TYPE_CHECKING:`` is
never mutated, and neither are docstrings or imports.

Operators (see :data:`OPERATORS`)::

    comparison      a < b   -> a <= b      (also >/>=, ==/!=, is/is not, in/not in)
    boolean         a and b -> a or b
    off_by_one      42      -> 41 / 43     (integer literals; no negative results)
    slice_bound     x[i:j]  -> x[i - 1:j]  (non-literal slice bounds, +/- 1)
    swap_args       f(a, b) -> f(b, a)     (first two positional arguments)
    invert_if       if c:   -> if not c:   (also elif; `not c` becomes `c`)
    drop_statement  removes one simple statement from a block of two or more
    drop_else       removes the else/elif branch of an if
    change_return   return True -> return False, return a < b -> return not a < b,
                    return x -> return None
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

Replacement = cst.CSTNode | cst.RemovalSentinel
Alternative = tuple[Replacement, cst.CSTNode, str]
"""(replacement node, node whose position locates the change, short description)."""


@dataclass(frozen=True)
class Operator:
    """A mutation operator: its ``alternatives`` are the mutants of one node (none for most nodes)."""

    name: str
    doc: str
    alternatives: Callable[[cst.CSTNode], list[Alternative]]


@dataclass(frozen=True)
class Site:
    """One mutant of one file: apply with :func:`mutate`."""

    path: str
    operator: str
    index: int
    line: int
    end_line: int
    description: str


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    """One line of code for a site description."""
    text = " ".join(_code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _needs_parens(expr: cst.BaseExpression) -> bool:
    if expr.lpar:
        return False
    return not isinstance(
        expr,
        (
            cst.Name,
            cst.Attribute,
            cst.Call,
            cst.Subscript,
            cst.Integer,
            cst.Float,
            cst.SimpleString,
            cst.Comparison,
            cst.List,
            cst.Tuple,
            cst.Dict,
            cst.Set,
        ),
    )


def _paren(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]) if _needs_parens(expr) else expr


def negate(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``not expr``, or the operand when ``expr`` already is a ``not``."""
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not) and not expr.lpar:
        operand = expr.expression
        return (
            operand.with_changes(lpar=[], rpar=[])
            if isinstance(operand, (cst.Name, cst.Attribute, cst.Call))
            else operand
        )
    inner = expr
    if isinstance(inner, (cst.BooleanOperation, cst.IfExp, cst.Lambda, cst.NamedExpr)) and not inner.lpar:
        inner = inner.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.UnaryOperation(operator=cst.Not(), expression=inner)


# --- operators ------------------------------------------------------------------------

_COMPARISON_SWAPS: dict[type, type] = {
    cst.LessThan: cst.LessThanEqual,
    cst.LessThanEqual: cst.LessThan,
    cst.GreaterThan: cst.GreaterThanEqual,
    cst.GreaterThanEqual: cst.GreaterThan,
    cst.Equal: cst.NotEqual,
    cst.NotEqual: cst.Equal,
    cst.Is: cst.IsNot,
    cst.IsNot: cst.Is,
    cst.In: cst.NotIn,
    cst.NotIn: cst.In,
}


def _comparison(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.ComparisonTarget):
        return []
    op = node.operator
    new_type = _COMPARISON_SWAPS.get(type(op))
    if new_type is None:
        return []
    new_op = new_type(whitespace_before=op.whitespace_before, whitespace_after=op.whitespace_after)  # type: ignore[attr-defined]  # every operator in the table has both
    return [(node.with_changes(operator=new_op), node, f"`{_short(op)}` -> `{_short(new_op)}`")]


def _boolean(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.BooleanOperation):
        return []
    op = node.operator
    new_op = (cst.Or if isinstance(op, cst.And) else cst.And)(
        whitespace_before=op.whitespace_before, whitespace_after=op.whitespace_after
    )
    return [(node.with_changes(operator=new_op), node, f"`{_short(op)}` -> `{_short(new_op)}`")]


def _off_by_one(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.Integer):
        return []
    try:
        value = int(node.value.replace("_", ""), 0)
    except ValueError:
        return []
    out: list[Alternative] = []
    for new in (value - 1, value + 1):
        if new >= 0:
            out.append((node.with_changes(value=str(new)), node, f"`{node.value}` -> `{new}`"))
    return out


def _shift(expr: cst.BaseExpression, delta: int) -> cst.BaseExpression:
    return cst.BinaryOperation(
        left=_paren(expr),
        operator=cst.Add(whitespace_before=cst.SimpleWhitespace(" "), whitespace_after=cst.SimpleWhitespace(" "))
        if delta > 0
        else cst.Subtract(whitespace_before=cst.SimpleWhitespace(" "), whitespace_after=cst.SimpleWhitespace(" ")),
        right=cst.Integer("1"),
    )


def _slice_bound(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.Slice):
        return []
    out: list[Alternative] = []
    for field in ("lower", "upper"):
        bound = getattr(node, field)
        if (
            bound is None
            or isinstance(bound, cst.Integer)
            or (isinstance(bound, cst.UnaryOperation) and isinstance(bound.expression, cst.Integer))
        ):
            continue  # literals are the off_by_one operator's
        for delta in (-1, 1):
            new = _shift(bound, delta)
            out.append(
                (node.with_changes(**{field: new}), bound, f"slice {field} `{_short(bound)}` -> `{_short(new)}`")
            )
    return out


def _swap_args(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.Call) or len(node.args) < 2:
        return []
    a, b = node.args[0], node.args[1]
    if a.keyword or b.keyword or a.star or b.star:
        return []
    if _code(a.value) == _code(b.value):
        return []
    args = [a.with_changes(value=b.value), b.with_changes(value=a.value), *node.args[2:]]
    return [
        (
            node.with_changes(args=args),
            node,
            f"swap `{_short(a.value)}` and `{_short(b.value)}` in call to `{_short(node.func)}`",
        )
    ]


def _invert_if(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.If):
        return []
    new = negate(node.test)
    return [(node.with_changes(test=new), node.test, f"`if {_short(node.test)}` -> `if {_short(new)}`")]


def _is_droppable(stmt: cst.BaseStatement) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for small in stmt.body:
        if isinstance(small, (cst.Pass, cst.Global, cst.Nonlocal, cst.Import, cst.ImportFrom)):
            return False
        if isinstance(small, cst.Expr) and isinstance(
            small.value, (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis)
        ):
            return False  # docstrings and placeholders
    return True


def _drop_statement(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.IndentedBlock) or len(node.body) < 2:
        return []
    out: list[Alternative] = []
    for i, stmt in enumerate(node.body):
        if _is_droppable(stmt):
            body = [s for j, s in enumerate(node.body) if j != i]
            if all(
                isinstance(s, cst.SimpleStatementLine) and not _is_droppable(s) and isinstance(s.body[0], cst.Expr)
                for s in body
            ):
                continue  # only a docstring would be left
            out.append((node.with_changes(body=body), stmt, f"drop `{_short(stmt.with_changes(leading_lines=[]))}`"))
    return out


def _drop_else(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.If) or node.orelse is None:
        return []
    kind = "elif" if isinstance(node.orelse, cst.If) else "else"
    return [(node.with_changes(orelse=None), node.orelse, f"drop the {kind} branch")]


def _change_return(node: cst.CSTNode) -> list[Alternative]:
    if not isinstance(node, cst.Return) or node.value is None:
        return []
    value = node.value
    if isinstance(value, cst.Name) and value.value in ("True", "False"):
        new: cst.BaseExpression = cst.Name("False" if value.value == "True" else "True")
    elif isinstance(value, cst.Name) and value.value == "None":
        return []
    elif isinstance(value, (cst.Comparison, cst.BooleanOperation)) or (
        isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Not)
    ):
        new = negate(value)
    else:
        new = cst.Name("None")
    return [(node.with_changes(value=new), node, f"`return {_short(value)}` -> `return {_short(new)}`")]


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in [
        Operator(
            "comparison",
            "swap a comparison operator with its boundary twin (< and <=, == and !=, in and not in)",
            _comparison,
        ),
        Operator("boolean", "swap `and` and `or`", _boolean),
        Operator("off_by_one", "add or subtract one from an integer literal", _off_by_one),
        Operator("slice_bound", "add or subtract one from a non-literal slice bound", _slice_bound),
        Operator("swap_args", "swap the first two positional arguments of a call", _swap_args),
        Operator("invert_if", "negate the condition of an if/elif", _invert_if),
        Operator("drop_statement", "remove one simple statement from a block", _drop_statement),
        Operator("drop_else", "remove the else/elif branch of an if", _drop_else),
        Operator("change_return", "negate a returned boolean or return None instead of a value", _change_return),
    ]
}


# --- traversal ------------------------------------------------------------------------


def _is_guard(node: cst.CSTNode) -> bool:
    """``if __name__ == "__main__":`` and ``if TYPE_CHECKING:`` blocks are left alone."""
    if not isinstance(node, cst.If):
        return False
    code = _code(node.test).replace("'", '"')
    return ("__name__" in code and "__main__" in code) or code.strip() in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


class _Mutator(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, operator: Operator, target: int | None) -> None:
        super().__init__()
        self.operator = operator
        self.target = target
        self.count = 0
        self.sites: list[tuple[int, int, str]] = []
        self._frozen = 0  # depth inside __main__/TYPE_CHECKING guards, imports, decorators, annotations

    def on_visit(self, node: cst.CSTNode) -> bool:
        if _is_guard(node) or isinstance(node, (cst.Import, cst.ImportFrom, cst.Decorator, cst.Annotation)):
            self._frozen += 1
        return True

    def on_leave(  # type: ignore[override]  # returns a mutant of another node type
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> Replacement:
        if _is_guard(original_node) or isinstance(
            original_node, (cst.Import, cst.ImportFrom, cst.Decorator, cst.Annotation)
        ):
            self._frozen -= 1
            return updated_node
        if self._frozen:
            return updated_node
        alternatives = self.operator.alternatives(original_node)
        first, self.count = self.count, self.count + len(alternatives)
        if self.target is None:
            for _, anchor, description in alternatives:
                pos = self.get_metadata(PositionProvider, anchor)
                self.sites.append((pos.start.line, pos.end.line, description))
        elif first <= self.target < self.count:
            return self.operator.alternatives(updated_node)[self.target - first][0]
        return updated_node


def parse(source: str) -> cst.Module:
    """``source`` as a libcst module."""
    return cst.parse_module(source)


def find_sites(source: str | cst.Module, path: str = "<string>", operators: Sequence[str] | None = None) -> list[Site]:
    """Every mutation site of ``operators`` (default: all) in ``source``, in a fixed order."""
    module = parse(source) if isinstance(source, str) else source
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    out: list[Site] = []
    for name in operators or OPERATORS:
        mutator = _Mutator(OPERATORS[name], None)
        wrapper.visit(mutator)
        out += [Site(path, name, i, line, end, desc) for i, (line, end, desc) in enumerate(mutator.sites)]
    return out


def mutate(source: str | cst.Module, operator: str, index: int) -> str:
    """The code of ``source`` with site ``index`` of ``operator`` applied."""
    if operator not in OPERATORS:
        raise ValueError(f"unknown mutation operator {operator!r}; choose from {', '.join(OPERATORS)}")
    module = parse(source) if isinstance(source, str) else source
    mutator = _Mutator(OPERATORS[operator], index)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(mutator)
    if index >= mutator.count:
        raise IndexError(f"{operator} has {mutator.count} sites in this source; index {index} is out of range")
    return new.code
