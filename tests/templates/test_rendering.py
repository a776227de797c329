from __future__ import annotations

import pytest
from jinja2 import TemplateError

from shared.core.errors import InvalidInput
from shared.templates import rendering as templates
from shared.templates.rendering import (
    MAX_FIELD_CHARS,
    MAX_SUBJECT_CHARS,
    MAX_TEMPLATE_BYTES,
    Rendered,
    render,
    validate,
)

SENDER = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "full_name": "Grace Hopper",
    "email": "grace@seller.test",
    "company": "Seller & Co",
    "job_title": "Account executive",
    "phone": "+1 555 0100",
}
RECIPIENT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@buyer.test"}


def html_of(html: str, recipient: dict[str, str] | None = None) -> str:
    return render(
        "s", html, sender=SENDER, recipient=RECIPIENT if recipient is None else recipient
    ).html


def refusal(html: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate("Subject", html)
    assert caught.value.field == "html"
    return caught.value


def test_render_fills_sender_and_recipient_fields() -> None:
    result = render(
        "Hello {{ recipient.first_name }}, from {{ sender.company }}",
        "<p>Dear {{ recipient['first_name'] }} {{ recipient.last_name }},</p>\n"
        "<p>{{ sender.full_name }} · {{ sender.job_title }} · {{ sender.phone }}</p>\n",
        sender=SENDER,
        recipient=RECIPIENT,
    )
    assert result == Rendered(
        subject="Hello Ada, from Seller & Co",
        html="<p>Dear Ada Lovelace,</p>\n<p>Grace Hopper · Account executive · +1 555 0100</p>\n",
    )


def test_html_values_are_escaped_and_the_seller_markup_is_not() -> None:
    hostile = {"first_name": '<script>alert("x")</script>', "company": "Tom & Jerry's"}
    out = html_of(
        '<a href="mailto:x" title="{{ recipient.company }}">{{ recipient.first_name }}</a>',
        hostile,
    )
    assert out == (
        '<a href="mailto:x" title="Tom &amp; Jerry&#39;s">'
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</a>"
    )


def test_subject_values_are_raw_but_kept_on_one_line() -> None:
    hostile = {"first_name": "<b>Ada</b>\r\nBcc: all@victim.test\u2028x\x00", "company": "A&B"}
    result = render(
        "Hi {{ recipient.first_name }} at {{ recipient.company }}",
        "x",
        sender=SENDER,
        recipient=hostile,
    )
    assert result.subject == "Hi <b>Ada</b> Bcc: all@victim.test x at A&B"


def test_a_newline_string_literal_cannot_break_the_subject() -> None:
    result = render('A{{ "\\r\\n" }}Bcc: x', "x", sender={}, recipient={})
    assert result.subject == "A Bcc: x"


def test_missing_and_empty_fields_render_empty_and_default_covers_both() -> None:
    html = "[{{ recipient.phone }}][{{ recipient.phone[0] }}][{{ recipient.first_name|default('there') }}]"
    assert html_of(html, {}) == "[][][there]"
    assert html_of(html, {"first_name": ""}) == "[][][there]"
    assert html_of(html, {"first_name": "Ada", "phone": "+44"}) == "[+44][+][Ada]"


def test_conditions_filters_and_concatenation_work() -> None:
    html = (
        "{% if recipient.company %}at {{ recipient.company|upper }}"
        "{% elif recipient.email is in 'x' %}?{% else %}no company{% endif %}|"
        "{{ (recipient.first_name ~ ' ' ~ recipient.last_name)|truncate(5, end='…') }}|"
        "{{ recipient.first_name|first }}{{ recipient.last_name|first }}|"
        "{{ 'yes' if 'buyer' in recipient.email else 'no' }}"
    )
    assert html_of(html) == "no company|Ada…|AL|yes"


def test_unknown_fields_and_unsupplied_keys_are_ignored() -> None:
    out = html_of("{{ recipient.first_name }}", {"first_name": "Ada", "password": "hunter2"})
    assert out == "Ada"


def test_long_field_values_are_cut() -> None:
    out = html_of("{{ recipient.company }}", {"company": "x" * (MAX_FIELD_CHARS * 5)})
    assert out == "x" * MAX_FIELD_CHARS


@pytest.mark.parametrize(
    "html",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ recipient.first_name.__class__.__mro__ }}",
        "{{ recipient.__class__ }}",
        "{{ recipient['__class__'] }}",
        "{{ recipient.__init__.__globals__ }}",
        "{{ recipient.items() }}",
        "{{ recipient.pop('email') }}",
        "{{ recipient }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ self }}",
        "{{ range(10**9) }}",
        "{{ range(100000)|join }}",
        "{% include 'secrets.html' %}",
        "{% extends 'base.html' %}",
        "{% import 'macros.html' as m %}",
        "{% from 'macros.html' import m %}",
        "{{ lipsum() }}",
        "{{ lipsum }}",
        "{% set ns = namespace(x=1) %}",
        "{{ namespace }}",
        "{{ config }}",
        "{{ loop.cycle }}",
        "{{ super() }}",
        "{{ caller() }}",
        "{{ recipient.first_name|attr('__class__') }}",
        "{{ '{0.__class__}'.format(recipient.first_name) }}",
        "{{ '%s'|format(recipient.first_name) }}",
        "{{ recipient.first_name|safe }}",
        "{% autoescape false %}{{ recipient.first_name }}{% endautoescape %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% for a in recipient.email %}{% for b in recipient.email %}.{% endfor %}{% endfor %}",
        "{% with x = recipient %}{{ x.email }}{% endwith %}",
        "{{ 'a' * 1000000000 }}",
        "{{ 9 ** 9 ** 9 }}",
        "{% set a = recipient.company ~ recipient.company %}{% set b = a ~ a %}{{ b }}",
        "{{ recipient.company|urlencode|urlencode|urlencode }}",
        "{{ recipient.first_name|center(1000000000) }}",
        "{{ recipient.first_name|replace('', 'xxxxxxxxxx') }}",
        "{{ recipient.first_name[sender.email] }}",
        "{{ recipient[sender.email] }}",
    ],
)
def test_sandbox_escapes_and_blowups_are_refused_before_running(html: str) -> None:
    error = refusal(html)
    assert error.message.startswith("line 1: ")
    with pytest.raises(InvalidInput):
        render("s", html, sender=SENDER, recipient=RECIPIENT)


@pytest.mark.parametrize(
    "html",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ recipient.first_name.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__}'.format(recipient.first_name) }}",
        "{% set x = recipient.update({'a': 1}) %}",
        "{{ recipient.pop('first_name') }}",
        "{{ lipsum() }}",
        "{{ namespace() }}",
        "{% include 'x' %}",
    ],
)
def test_the_sandbox_alone_still_refuses_escapes(html: str) -> None:
    """The second fence: even a template that skipped validation reaches nothing."""
    env = templates._ENVIRONMENTS["html"]
    try:
        out = env.from_string(html).render(sender={}, recipient={"first_name": "Ada"})
    except (TemplateError, TypeError):
        return
    assert out == ""


def test_syntax_error_names_the_line() -> None:
    error = refusal("<p>Hello</p>\n\n<p>{{ recipient.first_name }</p>\n")
    assert error.message.startswith("line 3: ")


@pytest.mark.parametrize(
    ("html", "words"),
    [
        ("<p>\n{{ recipient.nickname }}", ["line 2", "nickname", "first_name"]),
        ("<p>\n\n{{ customer.first_name }}", ["line 3", "unknown name 'customer'"]),
        ("\n{{ recipient.first_name|shout }}", ["line 2", "no filter 'shout'"]),
        (
            "\n{% if recipient.email is defined %}{{ recipient.email|shout }}{% endif %}",
            ["line 2", "no filter 'shout'"],
        ),
        ("{% if recipient.email is sameas 1 %}{% endif %}", ["line 1", "no test 'sameas'"]),
        ("a\n\n\n{{ recipient.first_name < 3 }}", ["line 4", "cannot be rendered"]),
        ("{{ recipient.first_name|truncate(1) }}", ["line 1", "cannot be rendered"]),
        ("{% include 'x' %}", ["include"]),
        ("{{ x }}{% for x in y %}{% endfor %}", ["unknown name 'x'"]),
    ],
)
def test_refusals_say_what_and_where(html: str, words: list[str]) -> None:
    message = refusal(html).message
    for word in words:
        assert word in message


def test_subject_errors_name_the_subject() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate("Hi {{ recipient.first }}", "<p>fine</p>")
    assert caught.value.field == "subject"
    assert "line 1" in caught.value.message


def test_subject_template_must_be_one_line() -> None:
    with pytest.raises(InvalidInput, match="single line") as caught:
        validate("Hi\n{{ recipient.first_name }}", "x")
    assert caught.value.field == "subject"


def test_templates_too_large_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate("s", "x" * (MAX_TEMPLATE_BYTES + 1))
    assert caught.value.field == "html"
    assert caught.value.too_large
    with pytest.raises(InvalidInput) as caught:
        validate("s" * (MAX_SUBJECT_CHARS + 1), "x")
    assert caught.value.field == "subject"
    assert caught.value.too_large


def test_output_over_the_limit_is_refused() -> None:
    html = "{{ recipient.company }}" * 50
    with pytest.raises(InvalidInput) as caught:
        render("s", html, sender={}, recipient={"company": "x" * 100}, max_html_bytes=4_000)
    assert caught.value.field == "html"
    assert caught.value.too_large
    assert len(render("s", html, sender={}, recipient={"company": "x" * 80}).html) == 4_000


def test_a_subject_that_renders_too_long_is_refused() -> None:
    subject = "{{ recipient.company }}" * 2
    with pytest.raises(InvalidInput) as caught:
        render(subject, "x", sender={}, recipient={"company": "x" * 500})
    assert caught.value.field == "subject"
    assert caught.value.too_large


@pytest.mark.parametrize(
    "html",
    [
        "{{ " + "9" * 5000 + " }}",
        "{% if 1 %}" * 120 + "x" + "{% endif %}" * 120,
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    ],
)
def test_pathological_templates_are_refused_cleanly(html: str) -> None:
    refusal(html)


def test_render_checks_a_template_that_was_never_validated() -> None:
    with pytest.raises(InvalidInput, match="unknown name"):
        render("s", "{{ secret }}", sender={}, recipient={})


def test_a_valid_template_validates() -> None:
    validate(
        "Quick question, {{ recipient.first_name|default('there') }}",
        "{# a comment #}{% raw %}{{ literal }}{% endraw %}"
        "<p>{{ recipient.company|title|trim }}{{ recipient.email[:3] }}</p>",
    )
