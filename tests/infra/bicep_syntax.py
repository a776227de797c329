"""Reads the Bicep our templates are written in, for tests: declarations and expressions, with
Bicep's own operator precedence (tests/infra/bicep.py evaluates them).

pycep, the parser checkov uses, writes a string literal and a name the same way and binds some
operators wrongly, which is fine for checkov and not for evaluating. This reader knows only the
subset the templates use and refuses anything else loudly (`BicepError`), so a template that
grows past it fails a test instead of being misread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


class BicepError(Exception):
    """Syntax or a function this reader does not know: the test, not the template, needs work."""


# ----------------------------------------------------------------------------- lexer

_PUNCT = [
    "=>", "==", "!=", "=~", "!~", "<=", ">=", "&&", "||", "??", ".?", "::",
    "{", "}", "[", "]", "(", ")", ",", ":", ".", "?", "!", "<", ">", "+", "-", "*", "/", "%",
    "=", "@",
]  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


@dataclass(frozen=True)
class Token:
    kind: str  # ident, int, str, punct, nl, eof
    value: Any
    line: int


def _scan_string(src: str, i: int, line: int) -> tuple[list[str | list[Token]], int]:
    """A single-quoted string starting at src[i] == "'": its literal parts and the tokens of each
    ${...} inside, and the index after the closing quote."""
    parts: list[str | list[Token]] = []
    text: list[str] = []
    i += 1
    while True:
        if i >= len(src) or src[i] == "\n":
            raise BicepError(f"line {line}: unterminated string")
        c = src[i]
        if c == "'":
            parts.append("".join(text))
            return parts, i + 1
        if c == "\\":
            escaped = src[i + 1]
            if escaped not in _ESCAPES:
                raise BicepError(f"line {line}: escape \\{escaped} not supported")
            text.append(_ESCAPES[escaped])
            i += 2
            continue
        if src.startswith("${", i):
            parts.append("".join(text))
            text = []
            tokens, i = _tokens(src, i + 2, line, until_brace=True)
            parts.append(tokens)
            continue
        text.append(c)
        i += 1


def _tokens(src: str, i: int, line: int, until_brace: bool = False) -> tuple[list[Token], int]:
    out: list[Token] = []
    depth = 0
    while i < len(src):
        c = src[i]
        if c in " \t\r":
            i += 1
        elif c == "\n":
            out.append(Token("nl", None, line))
            line += 1
            i += 1
        elif src.startswith("//", i):
            while i < len(src) and src[i] != "\n":
                i += 1
        elif src.startswith("/*", i):
            end = src.index("*/", i)
            line += src.count("\n", i, end)
            i = end + 2
        elif src.startswith("'''", i):
            end = src.index("'''", i + 3)
            out.append(Token("str", [src[i + 3 : end]], line))
            line += src.count("\n", i, end)
            i = end + 3
        elif c == "'":
            parts, i = _scan_string(src, i, line)
            out.append(Token("str", parts, line))
        elif c.isdigit():
            j = i
            while j < len(src) and src[j].isdigit():
                j += 1
            out.append(Token("int", int(src[i:j]), line))
            i = j
        elif match := _IDENT.match(src, i):
            out.append(Token("ident", match.group(), line))
            i = match.end()
        else:
            punct = next((p for p in _PUNCT if src.startswith(p, i)), None)
            if punct is None:
                raise BicepError(f"line {line}: unexpected {c!r}")
            if until_brace:
                if punct == "{":
                    depth += 1
                elif punct == "}":
                    if depth == 0:
                        out.append(Token("eof", None, line))
                        return out, i + 1
                    depth -= 1
            out.append(Token("punct", punct, line))
            i += len(punct)
    if until_brace:
        raise BicepError(f"line {line}: unterminated ${{...}}")
    out.append(Token("eof", None, line))
    return out, i


# ----------------------------------------------------------------------------- parser

Node = tuple[Any, ...]

# Binary operators by precedence, loosest first (Bicep's table; ?: and => are handled apart).
_BINARY = [["??"], ["||"], ["&&"], ["==", "!=", "=~", "!~"], ["<", "<=", ">", ">="], ["+", "-"]]
_BINARY += [["*", "/", "%"]]
_LEVEL = {op: n for n, ops in enumerate(_BINARY) for op in ops}


@dataclass
class Param:
    name: str
    type: str
    default: Node | None
    decorators: dict[str, list[Node]]

    @property
    def secure(self) -> bool:
        return "secure" in self.decorators


@dataclass
class Declared:
    """A resource or module: its type or path, and its body (an object, maybe behind `if`)."""

    name: str
    target: str
    existing: bool
    condition: Node | None
    body: Node
    loop: bool = False


@dataclass
class Template:
    path: Path
    target_scope: str = "resourceGroup"
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Node] = field(default_factory=dict)
    resources: dict[str, Declared] = field(default_factory=dict)
    modules: dict[str, Declared] = field(default_factory=dict)
    outputs: dict[str, tuple[str, Node]] = field(default_factory=dict)


class _Parser:
    def __init__(self, tokens: list[Token], where: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.where = where
        self.newlines_ok = 0  # > 0 inside (...) where line breaks mean nothing

    # -- token helpers
    def peek(self, ahead: int = 0) -> Token:
        j = self.i
        seen = 0
        while True:
            token = self.tokens[j]
            if token.kind == "nl" and self.newlines_ok:
                j += 1
                continue
            if seen == ahead:
                return token
            seen += 1
            j += 1

    def next(self) -> Token:
        while self.tokens[self.i].kind == "nl" and self.newlines_ok:
            self.i += 1
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_(self, value: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind in ("punct", "ident") and token.value == value

    def expect(self, value: str) -> Token:
        token = self.next()
        if token.value != value or token.kind not in ("punct", "ident"):
            raise self.error(f"expected {value!r}, found {token.value!r}", token)
        return token

    def skip_newlines(self) -> None:
        while self.tokens[self.i].kind == "nl":
            self.i += 1

    def error(self, message: str, token: Token | None = None) -> BicepError:
        token = token or self.peek()
        return BicepError(f"{self.where}:{token.line}: {message}")

    # -- declarations
    def template(self, path: Path) -> Template:
        template = Template(path)
        decorators: dict[str, list[Node]] = {}
        while True:
            self.skip_newlines()
            token = self.next()
            if token.kind == "eof":
                return template
            keyword = token.value
            if keyword == "@":
                name = self.next().value
                if name == "sys":
                    self.expect(".")
                    name = self.next().value
                decorators[name] = self.call_args()
                continue
            if keyword == "targetScope":
                self.expect("=")
                template.target_scope = self.expression()[1][0]
            elif keyword == "metadata":
                self.next()
                self.expect("=")
                self.expression()
            elif keyword == "param":
                name = self.next().value
                type_ = self.next().value
                default = None
                if self.is_("="):
                    self.next()
                    default = self.expression()
                template.params[name] = Param(name, type_, default, decorators)
            elif keyword == "var":
                name = self.next().value
                self.expect("=")
                template.variables[name] = self.expression()
            elif keyword == "output":
                name = self.next().value
                type_ = self.next().value
                self.expect("=")
                template.outputs[name] = (type_, self.expression())
            elif keyword in ("resource", "module"):
                name = self.next().value
                target = "".join(self.next().value)
                existing = self.is_("existing")
                if existing:
                    self.next()
                self.expect("=")
                condition = None
                loop = self.is_("[")
                if self.is_("if"):
                    self.next()
                    self.expect("(")
                    self.newlines_ok += 1
                    condition = self.expression()
                    self.newlines_ok -= 1
                    self.expect(")")
                declared = Declared(name, target, existing, condition, self.expression(), loop)
                (template.resources if keyword == "resource" else template.modules)[name] = declared
            else:
                raise self.error(f"declaration {keyword!r} not supported", token)
            decorators = {}
            end = self.next()
            if end.kind not in ("nl", "eof"):
                raise self.error(f"unexpected {end.value!r} after a declaration", end)
            if end.kind == "eof":
                return template

    def call_args(self) -> list[Node]:
        self.expect("(")
        self.newlines_ok += 1
        args: list[Node] = []
        while not self.is_(")"):
            args.append(self.expression())
            if not self.is_(")"):
                self.expect(",")
        self.next()
        self.newlines_ok -= 1
        return args

    # -- expressions
    def expression(self) -> Node:
        if self.peek().kind == "ident" and self.is_("=>", 1):
            name = self.next().value
            self.next()
            return ("lambda", [name], self.expression())
        condition = self.binary(0)
        if self.is_("?"):
            self.next()
            when_true = self.expression()
            self.expect(":")
            return ("ternary", condition, when_true, self.expression())
        return condition

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().kind == "punct" and self.peek().value in _BINARY[level]:
            op = self.next().value
            left = ("binary", op, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.is_("!") or self.is_("-"):
            op = self.next().value
            return ("unary", op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.is_(".") or self.is_(".?"):
                safe = self.next().value == ".?"
                node = ("member", node, self.next().value, safe)
            elif self.is_("["):
                self.next()
                self.newlines_ok += 1
                index = self.expression()
                self.newlines_ok -= 1
                self.expect("]")
                node = ("index", node, index)
            elif self.is_("!") and not self._starts_operand(1):
                self.next()  # the non-null assertion changes nothing at run time
            else:
                return node

    def _starts_operand(self, ahead: int) -> bool:
        token = self.peek(ahead)
        return token.kind in ("ident", "int", "str") or token.value in ("(", "!", "[", "{")

    def primary(self) -> Node:
        token = self.next()
        if token.kind == "int":
            return ("lit", token.value)
        if token.kind == "str":
            return self.string(token)
        if token.kind == "ident":
            if token.value in ("true", "false"):
                return ("lit", token.value == "true")
            if token.value == "null":
                return ("lit", None)
            if token.value in ("sys", "az") and self.is_("."):
                self.next()
                token = self.next()
            if self.is_("("):
                return ("call", token.value, self.call_args())
            return ("ref", token.value)
        if token.value == "(":
            self.newlines_ok += 1
            if (self.peek().kind == "ident" and self.is_(",", 1)) or (
                self.is_(")", 1) and self.is_("=>", 2)
            ):
                names = [self.next().value]
                while self.is_(","):
                    self.next()
                    names.append(self.next().value)
                self.expect(")")
                self.newlines_ok -= 1
                self.expect("=>")
                return ("lambda", names, self.expression())
            inner = self.expression()
            self.expect(")")
            self.newlines_ok -= 1
            return inner
        if token.value == "[":
            return self.array()
        if token.value == "{":
            return self.object()
        raise self.error(f"unexpected {token.value!r}", token)

    def string(self, token: Token) -> Node:
        parts: list[Any] = []
        for part in token.value:
            if isinstance(part, str):
                parts.append(part)
            else:
                inner = _Parser(part, self.where)
                parts.append(inner.expression())
                if inner.next().kind != "eof":
                    raise self.error("unexpected text in ${...}", token)
        return ("str", parts)

    def _items(self, close: str) -> Iterator[None]:
        """Yields once per item of a [...] or {...} literal: items are separated by line breaks
        (or commas, on one line)."""
        saved = self.newlines_ok
        self.newlines_ok = 0
        while True:
            self.skip_newlines()
            if self.is_(close):
                self.next()
                self.newlines_ok = saved
                return
            yield
            if self.is_(","):
                self.next()

    def array(self) -> Node:
        if self.is_("for"):
            self.next()
            names = [self.next().value]
            if names[0] == "(":
                names = [self.next().value]
                self.expect(",")
                names.append(self.next().value)
                self.expect(")")
            self.expect("in")
            iterable = self.expression()
            self.expect(":")
            body = self.expression()
            self.skip_newlines()
            self.expect("]")
            return ("for", names, iterable, body)
        items = []
        for _ in self._items("]"):
            items.append(self.expression())
        return ("array", items)

    def object(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        for _ in self._items("}"):
            token = self.next()
            key: Node = self.string(token) if token.kind == "str" else ("str", [token.value])
            self.expect(":")
            pairs.append((key, self.expression()))
        return ("object", pairs)


@cache
def parse(path: Path) -> Template:
    """The declarations of one .bicep file."""
    tokens, _ = _tokens(path.read_text(), 0, 1)
    return _Parser(tokens, path.name).template(path)
