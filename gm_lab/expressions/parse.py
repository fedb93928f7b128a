"""Text -> tree: a tokenizer and a recursive-descent parser for the proxy language.

Grammar (whitespace is free; names are ASCII):

    expression     := additive END
    additive       := multiplicative (("+" | "-") multiplicative)*      left-associative
    multiplicative := unary (("*" | "/") unary)*                        left-associative
    unary          := "-" NUMBER | "-" unary | "+" unary | primary
    primary        := NUMBER | NAME | NAME "(" [additive ("," additive)*] ")" | "(" additive ")"
    NUMBER         := digits ["." digits] [("e" | "E") ["+" | "-"] digits]  (or "." digits ...)

``-2`` directly is the constant -2, ``-(2)`` the negation of 2; the printer relies on that.
Names are statistics (per-layer, L), proxies (scalar, S) or functions; ``add, sub, mul, div,
neg`` may also be called by name. Each operator's typed DEAP variant is chosen from the types of
its arguments, so a wrongly typed expression is rejected here, with the column of the culprit.
Nothing is ever passed to eval/exec; nesting, size and depth are bounded before they could
exhaust the stack or memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deap import gp

from gm_lab.expressions.errors import ExpressionError
from gm_lab.expressions.nodes import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT_LENGTH,
    Node,
    TypingProblem,
    const,
    limit_reason,
    make_op,
    scalar_root_reason,
    terminal,
    to_tree,
)

MAX_NESTING = 80  # parentheses, calls and unary signs open at once (bounds parser recursion)

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[-+*/(),])
    """,
    re.VERBOSE | re.ASCII,
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+", re.ASCII)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "punct", "end"
    text: str
    position: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        shown = self.text if len(self.text) <= 30 else self.text[:30] + "..."
        return f"{self.kind} {shown!r}" if self.kind != "punct" else repr(shown)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an "end" token; ExpressionError at the first character
    that cannot start a token, or at a malformed number such as ``1.2.3`` or ``2x``."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            raise ExpressionError(f"unexpected character {char!r}", text=text, position=position)
        kind = match.lastgroup or ""
        if kind == "number":
            tail = _NUMBER_TAIL.match(text, match.end())
            if tail is not None:
                bad = text[position : tail.end()]
                shown = bad if len(bad) <= 30 else bad[:30] + "..."
                raise ExpressionError(
                    f"malformed number {shown!r} (write a product as 2 * x)",
                    text=text,
                    position=position,
                )
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def parse(text: str) -> gp.PrimitiveTree:
    """The DEAP tree of expression `text`; ExpressionError (with column and caret) if invalid."""
    return to_tree(parse_node(text))


def parse_node(text: str) -> Node:
    """Like `parse`, returning the nested `Node` view."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is text, not {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"expression text too long: {len(text)} characters, at most {MAX_TEXT_LENGTH}",
            text=text,
            position=MAX_TEXT_LENGTH,
        )
    parser = _Parser(text, tokenize(text))
    return parser.expression()


class _Parser:
    """Recursive descent over the token list; every node is typed and bounded when built."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    # ---- helpers ------------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, punct: str) -> bool:
        return self.token.kind == "punct" and self.token.text == punct

    def error(self, reason: str, position: int) -> ExpressionError:
        return ExpressionError(reason, text=self.text, position=position)

    def enter(self, position: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            reason = f"expression nested too deeply (more than {MAX_NESTING} levels)"
            raise self.error(reason, position)

    def checked(self, node: Node, position: int) -> Node:
        reason = limit_reason(node.size, node.depth)
        if reason:
            raise self.error(reason, position)
        return node

    def build(self, name: str, args: list[tuple[Node, int]], position: int) -> Node:
        """The operator node, or an error pointing at the call or at the argument at fault."""
        try:
            node = make_op(name, tuple(a for a, _ in args))
        except TypingProblem as exc:
            where = position if exc.argument is None else args[exc.argument][1]
            raise self.error(exc.reason, where) from None
        return self.checked(node, position)

    # ---- grammar ------------------------------------------------------------------------------
    def expression(self) -> Node:
        if self.token.kind == "end":
            raise self.error("empty expression", 0)
        node, _ = self.additive()
        if self.token.kind != "end":
            token = self.token
            what = "unmatched ')'" if token.text == ")" else f"unexpected {token.describe()}"
            raise self.error(f"{what} after a complete expression", token.position)
        reason = scalar_root_reason(node)
        if reason:
            raise self.error(reason, self.tokens[0].position)
        return node

    def additive(self) -> tuple[Node, int]:
        left, start = self.multiplicative()
        while self.at("+") or self.at("-"):
            op = self.advance()
            right = self.multiplicative()
            name = "add" if op.text == "+" else "sub"
            left = self.build(name, [(left, start), right], op.position)
        return left, start

    def multiplicative(self) -> tuple[Node, int]:
        left, start = self.unary()
        while self.at("*") or self.at("/"):
            op = self.advance()
            right = self.unary()
            name = "mul" if op.text == "*" else "div"
            left = self.build(name, [(left, start), right], op.position)
        return left, start

    def unary(self) -> tuple[Node, int]:
        token = self.token
        if self.at("-") or self.at("+"):
            self.advance()
            following = self.token
            if token.text == "-" and following.kind == "number":
                self.advance()
                return self.number(following, negative=True), token.position
            self.enter(token.position)
            operand = self.unary()
            self.nesting -= 1
            if token.text == "+":
                return operand[0], token.position
            return self.build("neg", [operand], token.position), token.position
        return self.primary(), token.position

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            return self.number(token)
        if token.kind == "name":
            self.advance()
            if self.at("("):
                return self.call(token)
            try:
                return terminal(token.text)
            except TypingProblem as exc:
                raise self.error(exc.reason, token.position) from None
        if self.at("("):
            self.advance()
            self.enter(token.position)
            inner, _ = self.additive()
            self.nesting -= 1
            self.expect_close(token)
            return inner
        found = token.describe()
        raise self.error(f"expected a number, a name or '(', found {found}", token.position)

    def call(self, name: Token) -> Node:
        opening = self.advance()
        self.enter(opening.position)
        args: list[tuple[Node, int]] = []
        if not self.at(")"):
            while True:
                args.append(self.additive())
                if len(args) > 2:
                    break  # no operator takes more: let build() say so, before more parsing
                if not self.at(","):
                    break
                self.advance()
        self.nesting -= 1
        if len(args) <= 2:
            self.expect_close(opening)
        return self.build(name.text, args, name.position)

    def expect_close(self, opening: Token) -> None:
        if self.at(")"):
            self.advance()
            return
        token = self.token
        if token.kind == "end":
            reason = f"missing ')' to close the '(' at column {opening.position + 1}"
        elif token.text == ",":
            reason = "unexpected ',' (only function calls take several arguments)"
        else:
            reason = f"expected ',' or ')', found {token.describe()}"
        raise self.error(reason, token.position)

    def number(self, token: Token, negative: bool = False) -> Node:
        value = float(token.text)
        if value == float("inf"):
            raise self.error(f"number {token.text[:30]!r} is too large", token.position)
        return self.checked(const(-value if negative else value), token.position)


__all__ = ["MAX_DEPTH", "MAX_NESTING", "MAX_NODES", "MAX_TEXT_LENGTH", "parse", "parse_node"]
