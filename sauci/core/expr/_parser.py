"""A recursive-descent parser for GitHub's expression grammar, depth-bounded.

Precedence, loosest first: ``||``, ``&&``, ``== !=``, ``< <= > >=``, ``!``,
then ``.name``, ``[index]`` and calls. Nesting is counted as GitHub counts it
and capped at MAX_DEPTH, and the tree's depth at MAX_TREE_DEPTH, so neither
parsing nor evaluation can exhaust Python's stack.
"""

from __future__ import annotations

from collections.abc import Callable

from sauci.core.expr._errors import MAX_DEPTH, MAX_TREE_DEPTH
from sauci.core.expr._functions import check_call
from sauci.core.expr._lexer import Kind, Source, Token, tokenize
from sauci.core.expr._nodes import Access, Call, Compare, Context, Literal, Logical, Node, Not, Star

__all__ = ["parse_tree"]

_EQUALITY = (Kind.EQ, Kind.NE)
_ORDER = (Kind.LT, Kind.LE, Kind.GT, Kind.GE)


def parse_tree(source: Source) -> Node:
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.at = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self, *kinds: Kind) -> Token | None:
        token = self.tokens[self.at]
        if token.kind in kinds:
            self.at += 1
            return token
        return None

    def unexpected(self, token: Token, expected: str) -> Exception:
        if token.kind is Kind.END:
            return self.source.error(
                f"unexpected end of expression: expected {expected}", token.offset
            )
        return self.source.error(f"unexpected {token.text!r}: expected {expected}", token.offset)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.source.error(
                f"the expression is nested more than {MAX_DEPTH} levels deep", token.offset
            )

    def tree_depth(self, offset: int, *children: Node) -> int:
        depth = 1 + max(child.depth for child in children)
        if depth > MAX_TREE_DEPTH:
            raise self.source.error(
                f"the expression is more than {MAX_TREE_DEPTH} operations deep", offset
            )
        return depth

    # -- grammar -------------------------------------------------------------

    def parse(self) -> Node:
        if self.peek().kind is Kind.END:
            raise self.source.error("the expression is empty", 0)
        node = self.expression()
        token = self.peek()
        if token.kind is not Kind.END:
            raise self.unexpected(token, "an operator or the end of the expression")
        return node

    def expression(self) -> Node:
        self.enter(self.peek())
        try:
            return self.logical(Kind.OR)
        finally:
            self.depth -= 1

    def logical(self, operator: Kind) -> Node:
        operand = self.equality if operator is Kind.AND else (lambda: self.logical(Kind.AND))
        first = operand()
        operands = [first]
        offset = -1
        while token := self.take(operator):
            offset = token.offset if offset < 0 else offset
            operands.append(operand())
        if len(operands) == 1:
            return first
        return Logical(operator.value, tuple(operands), offset, self.tree_depth(offset, *operands))

    def equality(self) -> Node:
        return self.binary(_EQUALITY, self.comparison)

    def comparison(self) -> Node:
        return self.binary(_ORDER, self.unary)

    def binary(self, kinds: tuple[Kind, ...], operand: Callable[[], Node]) -> Node:
        left = operand()
        while token := self.take(*kinds):
            right = operand()
            depth = self.tree_depth(token.offset, left, right)
            left = Compare(token.kind.value, left, right, token.offset, depth)
        return left

    def unary(self) -> Node:
        token = self.take(Kind.NOT)
        if token is None:
            return self.postfix()
        self.enter(token)
        try:
            operand = self.unary()
        finally:
            self.depth -= 1
        return Not(operand, token.offset, self.tree_depth(token.offset, operand))

    def postfix(self) -> Node:
        node, indexable = self.primary()
        while indexable:
            if token := self.take(Kind.DOT):
                index: Node
                if name := self.take(Kind.NAME):
                    index = Literal(name.text, name.offset)
                elif star := self.take(Kind.STAR):
                    index = Star(star.offset)
                else:
                    raise self.unexpected(self.peek(), "a property name or '*' after '.'")
            elif token := self.take(Kind.LBRACKET):
                if (star := self.take(Kind.STAR)) and self.peek().kind is Kind.RBRACKET:
                    index = Star(star.offset)
                else:
                    if star:
                        raise self.unexpected(self.peek(), "']' after '[*'")
                    index = self.expression()
                if not self.take(Kind.RBRACKET):
                    raise self.unexpected(self.peek(), "']'")
            else:
                break
            node = Access(node, index, token.offset, self.tree_depth(token.offset, node, index))
        return node

    def primary(self) -> tuple[Node, bool]:
        token = self.peek()
        self.at += 1
        if token.kind in (Kind.NUMBER, Kind.STRING, Kind.LITERAL):
            return Literal(token.value, token.offset), False
        if token.kind is Kind.LPAREN:
            node = self.expression()
            if not self.take(Kind.RPAREN):
                line, col = self.source.position(token.offset)
                where = f"column {col}"
                if line != self.source.position(self.peek().offset)[0]:
                    where = f"line {line}, column {col}"
                raise self.unexpected(self.peek(), f"')' to close the '(' at {where}")
            return node, True
        if token.kind is Kind.NAME:
            if self.take(Kind.LPAREN):
                return self.call(token), True
            return Context(token.text.lower(), token.offset), True
        self.at -= 1
        raise self.unexpected(token, "a value, a name or '('")

    def call(self, name: Token) -> Node:
        self.enter(name)
        try:
            arguments: list[Node] = []
            if not self.take(Kind.RPAREN):
                while True:
                    arguments.append(self.expression())
                    if self.take(Kind.RPAREN):
                        break
                    if not self.take(Kind.COMMA):
                        raise self.unexpected(self.peek(), "',' or ')'")
        finally:
            self.depth -= 1
        problem = check_call(name.text, len(arguments))
        if problem:
            raise self.source.error(problem, name.offset)
        depth = self.tree_depth(name.offset, *arguments) if arguments else 1
        return Call(name.text.lower(), name.text, tuple(arguments), name.offset, depth)
