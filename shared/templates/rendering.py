"""Email templates: checking and rendering a seller's subject and HTML with sender and
recipient fields. Pure: no I/O.

A template is code a seller wrote and we run for every recipient, so it gets three fences:

1. `validate` reads the template's syntax tree and allows only what personalisation needs:
   output, `if`, string literals, comparisons, `~`, indexing text, and a short list of filters
   that cannot blow a string up. Fields are read only as `sender.FIELD` or `recipient.FIELD`
   with a known field name. No loops, calls, arithmetic, `set`, `include` or `import`: a
   template that could loop, multiply or double a variable could also make a gigabyte or
   spin for an hour, so output stays linear in the template's size.
2. Rendering runs in Jinja's immutable sandbox with no globals and no loader, so even a
   construct that slipped past the checks cannot reach a Python attribute or another file.
3. Field values are cut to MAX_FIELD_CHARS, and output is streamed and refused past a size
   limit.

Every field is always present as a string: a missing one is "", so a contact without a phone
number never breaks a mail, and `default` treats "" as missing (`recipient.first_name |
default("there")`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.core.errors import InvalidInput

ROOTS = ("sender", "recipient")
FIELDS = frozenset(
    {"first_name", "last_name", "full_name", "email", "company", "job_title", "phone"}
)
MAX_FIELD_CHARS = 1_000  # far above any real name or address; bounds one expression's output
MAX_TEMPLATE_BYTES = 200_000
MAX_SUBJECT_CHARS = 998  # as for a composed subject (RFC 5322's line limit)
MAX_HTML_BYTES = 3_000_000  # as Settings.max_html_bytes
_MAX_SUBJECT_RENDER_BYTES = 16_000  # a cap while streaming, before line breaks are folded

# Filters that keep a string about the size it was: no padding, repeating or replacing, and
# none that grows again when chained (urlencode of urlencode triples each time).
_FILTERS = (
    "capitalize",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "last",
    "length",
    "lower",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
)
_TESTS = ("defined", "undefined", "eq", "equalto", "==", "ne", "!=", "in", "lower", "upper")

# Everything else (For, Call, Macro, Include, Mul, Pow, autoescape blocks...) is refused.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Name,
    nodes.Const,
    nodes.Tuple,
    nodes.List,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.CondExpr,
    nodes.Concat,
)
_REFUSED = {
    nodes.Include: "cannot include other templates",
    nodes.Extends: "cannot extend other templates",
    nodes.Import: "cannot import other templates",
    nodes.FromImport: "cannot import other templates",
    nodes.For: "loops are not supported",
    nodes.Call: "function and method calls are not supported",
    # Variables would let a template double a string thirty times over: a gigabyte.
    nodes.Assign: "set is not supported; write the field where it is needed",
    nodes.AssignBlock: "set is not supported; write the field where it is needed",
    nodes.Macro: "macros are not supported",
    nodes.CallBlock: "macros are not supported",
    nodes.Scope: "autoescape cannot be changed",  # the only scope the parser makes
    nodes.ScopedEvalContextModifier: "autoescape cannot be changed",
    nodes.EvalContextModifier: "autoescape cannot be changed",
} | dict.fromkeys(
    (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow),
    "arithmetic is not supported; join text with ~",
)
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_CONTROLS = re.compile("[\\x00-\\x08\\x0e-\\x1b\\x1f\\x7f-\\x84\\x86-\\x9f\\ud800-\\udfff]")
# Dry-run values: validation renders with these and with every field empty, so a template
# that fails at run time (comparing a string with a number...) is refused when it is saved.
_SAMPLE = {name: f"Sample {name.replace('_', ' ')}" for name in FIELDS}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template rendered for one recipient."""

    subject: str
    html: str


def _default(value: object, default_value: object = "", boolean: bool = True) -> object:
    """Jinja's `default`, except that "" always counts as missing (`boolean` is accepted for
    compatibility): every field is present, so "missing" can only mean empty."""
    return value if value else default_value


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=ChainableUndefined,
        loader=None,
        keep_trailing_newline=True,
        cache_size=0,
    )
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
    env.filters = {name: env.filters[name] for name in _FILTERS}
    env.filters["default"] = env.filters["d"] = _default
    env.tests = {name: env.tests[name] for name in _TESTS}
    return env


_ENVIRONMENTS = {
    "subject": _environment(autoescape=False),
    "html": _environment(autoescape=True),
}


def _refuse(field: str, node: nodes.Node, message: str) -> InvalidInput:
    line = node.lineno or next((n.lineno for n in node.find_all(nodes.Node) if n.lineno), 1)
    return InvalidInput(field, f"line {line}: {message}")


def _unknown(field: str, node: nodes.Name) -> InvalidInput:
    return _refuse(
        field, node, f"unknown name {node.name!r}; only sender and recipient are available"
    )


def _template_line(exc: BaseException) -> str:
    """Where in the template `exc` was raised, as "line N: " ("" if unknown); Jinja rewrites
    tracebacks so that a frame points into the template."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line else ""


def _check_field_access(field: str, node: nodes.Getattr | nodes.Getitem) -> bool:
    """Check a Getattr/Getitem; True when it reads a sender/recipient field (its Name child
    is then accepted and need not be visited)."""
    target = node.node
    if isinstance(target, nodes.Name) and target.name in ROOTS:
        name = node.attr if isinstance(node, nodes.Getattr) else _const_str(node.arg)
        if name is None:
            raise _refuse(field, node, f"name the field, as in {target.name}.first_name")
        if name not in FIELDS:
            allowed = ", ".join(sorted(FIELDS))
            raise _refuse(field, node, f"{target.name} has no field {name!r}; use one of {allowed}")
        return True
    if isinstance(target, nodes.Name):
        raise _unknown(field, target)
    if isinstance(node, nodes.Getattr):
        raise _refuse(field, node, "attributes can be read only as sender.FIELD or recipient.FIELD")
    if not _is_index(node.arg):
        raise _refuse(field, node, "only a number or a slice such as [0] or [:10] can index text")
    return False


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _is_index(node: nodes.Node) -> bool:
    def number(part: nodes.Node | None) -> bool:
        return part is None or (
            isinstance(part, nodes.Const)
            and isinstance(part.value, int)
            and not isinstance(part.value, bool)
        )

    if isinstance(node, nodes.Slice):
        return number(node.start) and number(node.stop) and number(node.step)
    return number(node)


def _walk(field: str, tree: nodes.Template) -> Iterator[nodes.Node]:
    """Every node of `tree`, refusing any that is not allowed; sender/recipient Names that
    are read through a field are skipped (they are checked by their parent)."""
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        refused = _REFUSED.get(type(node))
        if refused is not None:
            raise _refuse(field, node, refused)
        if not isinstance(node, _ALLOWED_NODES):
            raise _refuse(field, node, f"{type(node).__name__.lower()} is not supported")
        yield node
        children = list(node.iter_child_nodes())
        if isinstance(node, nodes.Getattr | nodes.Getitem) and _check_field_access(field, node):
            children.remove(node.node)
        stack.extend(reversed(children))


def _check(field: str, tree: nodes.Template) -> None:
    env = _ENVIRONMENTS[field]
    for node in _walk(field, tree):
        if isinstance(node, nodes.Name):
            # Fields were accepted by their Getattr; any Name left is the bare dict or a name
            # that does not exist. (jinja2.meta.find_undeclared_variables would miss `self`.)
            if node.name in ROOTS:
                raise _refuse(
                    field, node, f"use a field such as {node.name}.first_name, not {node.name}"
                )
            raise _unknown(field, node)
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            raise _refuse(
                field, node, f"there is no filter {node.name!r}; use one of {', '.join(_FILTERS)}"
            )
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            raise _refuse(field, node, f"there is no test {node.name!r}")


@lru_cache(maxsize=64)
def _compiled(field: str, source: str) -> Template:
    """`source` checked and compiled; cached, since one template renders for many people."""
    if len(source.encode()) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(field, f"is over {MAX_TEMPLATE_BYTES} bytes", too_large=True)
    if field == "subject":
        if len(source) > MAX_SUBJECT_CHARS:
            raise InvalidInput(field, f"is over {MAX_SUBJECT_CHARS} characters", too_large=True)
        if _LINE_BREAKS.search(source):
            raise InvalidInput(field, "must be a single line")
    env = _ENVIRONMENTS[field]
    try:
        tree = env.parse(source)
        _check(field, tree)
        return env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise InvalidInput(field, f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, SyntaxError):  # Python's own limits on nesting
        raise InvalidInput(field, "is nested too deeply") from None
    except ValueError as exc:  # a number literal too long to read
        raise InvalidInput(field, f"cannot be read: {exc}") from None


def _stream(field: str, template: Template, context: Mapping[str, Any], limit: int) -> str:
    """The template's output, refused past `limit` UTF-8 bytes without building it all."""
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk.encode())
            if size > limit:
                raise InvalidInput(field, f"renders to over {limit} bytes", too_large=True)
            parts.append(chunk)
    except TemplateError as exc:  # the sandbox's SecurityError among them
        where = _template_line(exc)
        raise InvalidInput(field, f"{where}cannot be rendered: {exc.message}") from None
    except (TypeError, ValueError, LookupError, ArithmeticError, AssertionError) as exc:
        # Filters check their arguments with assert (truncate(2) with end "...").
        raise InvalidInput(field, f"{_template_line(exc)}cannot be rendered: {exc}") from None
    return "".join(parts)


def _one_line(text: str) -> str:
    """A header-safe subject: line breaks become spaces, other controls are dropped."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", text)).strip()


def _fields(values: Mapping[str, str]) -> dict[str, str]:
    return {name: str(values.get(name) or "")[:MAX_FIELD_CHARS] for name in FIELDS}


def validate(subject: str, html: str) -> None:
    """Refuse a template that is malformed, too large, reads anything but sender and
    recipient fields, or fails when rendered with sample or with empty fields."""
    _compiled("subject", subject)
    _compiled("html", html)
    for values in (_SAMPLE, {}):
        render(subject, html, sender=values, recipient=values)


def render(
    subject: str,
    html: str,
    *,
    sender: Mapping[str, str],
    recipient: Mapping[str, str],
    max_html_bytes: int = MAX_HTML_BYTES,
) -> Rendered:
    """The subject (one line, not escaped) and HTML (values escaped) for one recipient;
    InvalidInput naming "subject" or "html" if the template is refused or renders too large.
    A stored template is checked again here (cheaply, from the cache): the rules may have
    tightened since it was saved."""
    context = {"sender": _fields(sender), "recipient": _fields(recipient)}
    subject_template = _compiled("subject", subject)
    html_template = _compiled("html", html)
    line = _one_line(_stream("subject", subject_template, context, _MAX_SUBJECT_RENDER_BYTES))
    if len(line) > MAX_SUBJECT_CHARS:
        raise InvalidInput(
            "subject", f"renders to over {MAX_SUBJECT_CHARS} characters", too_large=True
        )
    return Rendered(line, _stream("html", html_template, context, max_html_bytes))
