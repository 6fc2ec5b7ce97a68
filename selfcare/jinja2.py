"""The Jinja2 environment of the subscriber pages (templates/jinja2/).

Jinja2 compiles a template to Python, where Django's engine walks a node tree
per render; on the pages every subscriber loads (a 24-row consumption table, a
page of bills) that was most of the rendering time. The helpers below are what
the templates call; the two that cost most per call, `url()` and the language
list, are cached, since they depend only on the code and the page's language.
The admin and the message texts stay with Django's engine (the rest of templates/).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import get_day_names
from django.conf import settings
from django.http import HttpRequest
from django.template.backends.jinja2 import Jinja2 as DjangoJinja2
from django.template.backends.jinja2 import Template as DjangoJinja2Template
from django.template.backends.utils import csrf_input_lazy, csrf_token_lazy
from django.templatetags.static import static
from django.test.signals import template_rendered
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils import timezone, translation
from django.utils.translation import get_language_info
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from billing.charts import format_usage
from billing.models import Bill
from core.dates import format_cldr_date
from core.money import babel_locale, format_meter, format_money, format_quantity, format_unit_price

# Stand for an argument when a URL is reversed once per (language, name): the first
# that the URL's converters accept is used. Digits suit int, slug, str and account
# numbers; the second is shaped as a bill number (billing.converters).
_ARGS = ("8391027465", "8391027465-204911")
_PLAIN_ARG = re.compile(r"[A-Za-z0-9_.-]+")


@lru_cache(maxsize=1024)
def _url_pattern(prefix: str, language: str, name: str, arity: int) -> tuple[str, ...]:
    """The URL of `name` split around its arguments; `prefix` and `language` are
    part of the key because reverse() reads them (script prefix, i18n prefix)."""
    for arg in _ARGS:
        try:
            return tuple(reverse(name, args=[arg] * arity).split(arg))
        except NoReverseMatch:
            continue
    return ()  # _reverse then asks Django, which says what is wrong


def _reverse(prefix: str, language: str, name: str, args: tuple[Any, ...]) -> str:
    values = [str(arg) for arg in args]
    if not all(_PLAIN_ARG.fullmatch(v) for v in values):
        return reverse(name, args=args)  # anything needing quoting: Django's own reverse
    parts = _url_pattern(prefix, language, name, len(values))
    if len(parts) != len(values) + 1:
        return reverse(name, args=args)
    return "".join(part + value for part, value in zip(parts, [*values, ""], strict=True))


def url(name: str, *args: Any) -> str:
    """`{{ url('billing:consumption', account.number) }}`, as reverse() would write it;
    each (language, name) is reversed once, then the arguments are put in place:
    a bills page links a dozen bills, each with its own number."""
    return _reverse(get_script_prefix(), translation.get_language() or "", name, args)


@lru_cache(maxsize=1)
def languages() -> list[tuple[str, str]]:
    """The language switcher's entries, each named in its own language."""
    return [(code, get_language_info(code)["name_local"]) for code, _ in settings.LANGUAGES]


@lru_cache(maxsize=4096)
def _gettext(language: str, message: str) -> Markup:
    # Called while `language` is active; strings come from the templates, a bounded set.
    # Our catalogue is trusted markup, as in Jinja's own new-style gettext.
    return Markup(translation.gettext(message))  # noqa: S704


@lru_cache(maxsize=4096)
def _ngettext(language: str, singular: str, plural: str, number: int) -> Markup:
    return Markup(translation.ngettext(singular, plural, number))  # noqa: S704 - as above


def _page_context() -> dict[str, Any]:
    """`_`, `gettext`, `ngettext` and `url` for one render, bound to the page's
    language, and the page's CLDR locale for the number and date filters.

    They behave as Jinja's "new style" gettext (the translation is trusted markup,
    the variables are escaped and put in with %), but look the language up once per
    page instead of once per string: a page translates some thirty strings.
    """
    language = translation.get_language() or settings.LANGUAGE_CODE

    def gettext(message: str, **variables: Any) -> Markup:
        text = _gettext(language, message)
        # Variables are escaped by Markup's %; a text without any needs no formatting.
        return text % variables if variables or "%" in text else text

    def ngettext(singular: str, plural: str, number: int, **variables: Any) -> Markup:
        variables.setdefault("num", number)
        return _ngettext(language, singular, plural, number) % variables

    prefix = get_script_prefix()

    def page_url(name: str, *args: Any) -> str:
        return _reverse(prefix, language, name, args)

    return {
        "_": gettext, "gettext": gettext, "ngettext": ngettext, "url": page_url,
        "page_language": language, "page_locale": babel_locale(language),
    }  # fmt: skip


# Number and date filters, with the page's CLDR locale looked up once per render
# (page_locale, above) rather than once per number: a bills page formats ~60.


@pass_context
def money(context: Context, amount: Decimal | None, currency: str | None = None) -> str:
    return format_money(amount, currency or settings.SELFCARE_CURRENCY, locale=context["page_locale"])


@pass_context
def unit_price(context: Context, price: Decimal | None, currency: str | None = None) -> str:
    """A tariff (0,062 DT per kWh), keeping its extra digits."""
    return format_unit_price(price, currency or settings.SELFCARE_CURRENCY, locale=context["page_locale"])


@pass_context
def quantity(context: Context, value: Decimal | None) -> str:
    return format_quantity(value, locale=context["page_locale"])


@pass_context
def usage(context: Context, value: Decimal | None, unit: str) -> str:
    """A quantity of `unit` as the consumption page writes it (data in two decimals)."""
    return "" if value is None else format_usage(value, unit=unit, locale=context["page_locale"])


@pass_context
def meter(context: Context, value: Decimal | None) -> str:
    return format_meter(value, locale=context["page_locale"])


@pass_context
def month(context: Context, value: dt.date | None) -> str:
    return format_cldr_date(value, "LLLL y", context["page_locale"]) if value else ""


@pass_context
def longdate(context: Context, value: dt.date | None) -> str:
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date()
    return format_cldr_date(value, "d MMMM y", context["page_locale"]) if value else ""


@lru_cache(maxsize=64)
def _badge(language: str, status: str) -> Markup:
    # Called while `language` is active: a status's label, translated once per language.
    # f-string and escape(): Markup.format goes through string.Formatter, slow on a page of bills.
    label = Bill.Status(status).label
    return Markup(f'<span class="badge status-{escape(status)}">{escape(label)}</span>')  # noqa: S704 - escaped


@pass_context
def status_badge(context: Context, bill: Any, today: dt.date) -> Markup:
    """A bill's status as a badge; one overdue today says so, whether or not the
    hourly sweep has flagged it yet (the model's rule, `is_overdue`)."""
    status = Bill.Status.OVERDUE if bill.is_overdue(today) else bill.status
    return _badge(context["page_language"], status)


def hhmm(value: Any) -> str:
    return timezone.localtime(value).strftime("%H:%M") if value else ""


def clock(value: dt.time | None) -> str:
    """A time of day with no date (an agency opens at 08:00)."""
    return value.strftime("%H:%M") if value else ""


@lru_cache(maxsize=16)
def _weekday_names(locale: Locale) -> tuple[str, ...]:
    names = get_day_names("wide", context="stand-alone", locale=locale)
    return tuple(names[day][:1].upper() + names[day][1:] for day in range(7))  # lundi -> Lundi


@pass_context
def weekday(context: Context, iso_weekday: int) -> str:
    """An ISO weekday (Monday is 1) named in the page's language."""
    return _weekday_names(context["page_locale"])[iso_weekday - 1]


def environment(**options: Any) -> Environment:
    # Always escaped: pages show names and addresses that subscribers typed.
    options.pop("autoescape", None)
    env = Environment(autoescape=True, extensions=["jinja2.ext.i18n"], **options)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        translation.gettext, translation.ngettext, newstyle=True, pgettext=translation.pgettext
    )
    env.globals.update(
        url=url,
        static=static,
        languages=languages,
        get_language=translation.get_language,
        get_language_bidi=translation.get_language_bidi,
    )
    env.filters.update(
        money=money, unit_price=unit_price, quantity=quantity, month=month, longdate=longdate, meter=meter,
        hhmm=hhmm, status_badge=status_badge, clock=clock, weekday=weekday, usage=usage,
    )  # fmt: skip
    return env


class Jinja2(DjangoJinja2):
    """Django's Jinja2 backend, whose templates also send `template_rendered` as
    Django's own do under test: the test client then shows `response.context`.
    With no receiver connected (outside tests) the signal costs one check."""

    def get_template(self, template_name: str) -> Template:
        return Template(super().get_template(template_name).template, self)


class Template(DjangoJinja2Template):
    @property
    def name(self) -> str:
        return self.template.name

    def render(self, context: dict[str, Any] | None = None, request: HttpRequest | None = None) -> str:
        context = dict(context or {})
        if request is not None:
            context["request"] = request
            context["csrf_input"] = csrf_input_lazy(request)
            context["csrf_token"] = csrf_token_lazy(request)
            for context_processor in self.backend.template_context_processors:
                context.update(context_processor(request))
        context.update(_page_context())
        template_rendered.send(sender=self, template=self, context=context)
        return self.template.render(context)
