"""Symbolic sizes of a serialized program, checked against a strict grammar, never evaluated.

A program exported with a dynamic batch (``torch.export.Dim``) records each symbolic size as a
string: ``sympy.srepr`` of the expression in torch >= 2.6 (``Symbol('s77', positive=True,
integer=True)``, ``Mul(Integer(2), Symbol('s0', ...))``), its ``str`` form in older releases
(``s77``, ``2*s0``, ``s0//2``). ``torch.export.load`` hands the string to ``sympy.sympify``, which
runs it as Python: ``__import__('os').system(...) or Symbol('s77')`` executes its command.

:func:`check_expression` accepts only this grammar and evaluates nothing; spikebridge needs a
symbolic size's example value (the ``hint`` beside it), never the expression's value::

    expr    := sum [(== | != | < | <= | > | >=) sum]
    sum     := product ((+ | -) product)*
    product := unary ((* | // | %) unary)*
    unary   := - unary | atom
    atom    := INTEGER | SYMBOL | ( expr ) | true | false
             | Symbol('SYMBOL' (, ASSUMPTION=True|False)*) | Integer(-?INTEGER)
             | FUNCTION(expr (, expr)*)

with SYMBOL a short identifier (no leading underscore), ASSUMPTION one of sympy's integer
assumptions and FUNCTION one of sympy's and torch's integer functions (``Add``, ``Mul``,
``FloorDiv``, ``Mod``, ``Max``, ``Min``, relations, ...): names and integer arithmetic only.
"""

from __future__ import annotations

import keyword
import re

MAX_LENGTH = 2000
MAX_DEPTH = 40

FUNCTIONS = frozenset(
    {
        "Add", "Mul", "Max", "Min", "FloorDiv", "Mod", "PythonMod", "CleanDiv", "CeilDiv",
        "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan",
        "GreaterThan", "Equality", "Unequality", "And", "Or", "Not",
    }
)  # fmt: skip
ASSUMPTIONS = frozenset(
    {"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "zero"}
)
CONSTANTS = frozenset({"true", "false"})
_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")
_TOKEN = re.compile(
    r"\s*(?:(?P<int>\d{1,30})|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<op>//|==|!=|<=|>=|[-+*%(),=<>]))"
)


def _is_symbol(name: str) -> bool:
    reserved = keyword.iskeyword(name) or name in ("True", "False", "None", "Symbol", "Integer")
    return bool(_SYMBOL.match(name)) and not reserved and name not in FUNCTIONS


class ExpressionError(ValueError):
    """A symbolic-size string outside the grammar; the message says where."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected {text[pos : pos + 12]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.symbols: set[str] = set()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        got_kind, got = self.peek()
        if (value is not None and got != value) or (kind is not None and got_kind != kind):
            raise ExpressionError(f"expected {value or kind}, found {got or 'the end'!r}")
        self.pos += 1
        return got

    def expr(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ExpressionError("nested too deeply")
        self.sum(depth)
        if self.peek()[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.pos += 1
            self.sum(depth)

    def sum(self, depth: int) -> None:
        self.product(depth)
        while self.peek()[1] in ("+", "-"):
            self.pos += 1
            self.product(depth)

    def product(self, depth: int) -> None:
        self.unary(depth)
        while self.peek()[1] in ("*", "//", "%"):
            self.pos += 1
            self.unary(depth)

    def unary(self, depth: int) -> None:
        if self.peek()[1] == "-":
            self.pos += 1
            if depth > MAX_DEPTH:
                raise ExpressionError("nested too deeply")
            return self.unary(depth + 1)
        self.atom(depth)

    def atom(self, depth: int) -> None:
        kind, value = self.peek()
        if kind == "int":
            self.pos += 1
        elif value == "(":
            self.pos += 1
            self.expr(depth + 1)
            self.take(")")
        elif kind == "name" and value == "Symbol":
            self.pos += 1
            self.symbol_call()
        elif kind == "name" and value == "Integer":
            self.pos += 1
            self.take("(")
            if self.peek()[1] == "-":
                self.pos += 1
            self.take(kind="int")
            self.take(")")
        elif kind == "name" and value in FUNCTIONS:
            self.pos += 1
            self.take("(")
            self.expr(depth + 1)
            while self.peek()[1] == ",":
                self.pos += 1
                self.expr(depth + 1)
            self.take(")")
        elif kind == "name" and value in CONSTANTS:
            self.pos += 1
        elif kind == "name" and _is_symbol(value) and self._next() != "(":
            self.symbols.add(value)
            self.pos += 1
        else:
            raise ExpressionError(f"{value or 'the end'!r} is not a symbol, integer or operator")

    def _next(self) -> str:
        return self.tokens[self.pos + 1][1] if self.pos + 1 < len(self.tokens) else ""

    def symbol_call(self) -> None:
        self.take("(")
        name = self.take(kind="str")[1:-1]
        if not _is_symbol(name):
            raise ExpressionError(f"{name!r} is not a symbol name")
        self.symbols.add(name)
        while self.peek()[1] == ",":
            self.pos += 1
            key = self.take(kind="name")
            if key not in ASSUMPTIONS:
                raise ExpressionError(f"{key!r} is not an integer assumption")
            self.take("=")
            if self.take(kind="name") not in ("True", "False"):
                raise ExpressionError(f"assumption {key} is not True or False")
        self.take(")")


def check_expression(text: object) -> frozenset[str]:
    """The symbols of a symbolic-size string that matches the grammar (module docstring);
    :class:`ExpressionError` otherwise. Nothing is evaluated."""
    if not isinstance(text, str):
        raise ExpressionError(f"a {type(text).__name__}, not a string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{len(text)} characters (at most {MAX_LENGTH})")
    parser = _Parser(text)
    parser.expr(0)
    if parser.pos != len(parser.tokens):
        raise ExpressionError(f"unexpected {parser.peek()[1]!r} after the expression")
    return frozenset(parser.symbols)


__all__ = ["ExpressionError", "check_expression"]
