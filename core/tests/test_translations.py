"""Every string has an Arabic and a French translation, compiled and committed."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

LOCALE = Path(__file__).resolve().parents[2] / "locale"


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_the_compiled_catalogue_translates_every_string(language: str) -> None:
    po = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    with open(LOCALE / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        catalog = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]

    # Entries of the .po (the header excepted) against those compiled in the .mo:
    # an untranslated or fuzzy entry is left out of the .mo, and a stale .mo
    # misses the newest strings.
    entries = {_key(block) for block in po.split("\n\n")} - {None, ""}
    compiled = {key[0] if isinstance(key, tuple) else key for key in catalog} - {""}
    missing = entries - compiled
    assert len(entries) > 150
    assert not missing, f"{language}: not translated or not compiled: {sorted(missing)[:10]}"


def _key(block: str) -> str | None:
    """`msgctxt\x04msgid` of one .po entry, wrapped lines joined; None for comments only."""
    fields: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("#~") or line.startswith("#"):
            continue
        match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d\])?) "(.*)"$', line)
        if match:
            current = match.group(1)
            fields[current] = match.group(2)
        elif line.startswith('"') and current:
            fields[current] += line[1:-1]
    if "msgid" not in fields:
        return None
    msgid = fields["msgid"].encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
    return f"{fields['msgctxt']}\x04{msgid}" if "msgctxt" in fields else msgid


def _jinja2_msgids() -> set[str]:
    """Every string the Jinja2 pages translate, as `make messages` extracts them."""
    from babel.messages.extract import extract_from_file
    from jinja2.ext import babel_extract

    found = set()
    for path in (LOCALE.parent / "templates" / "jinja2").rglob("*.html"):
        for _lineno, message, _comments, _context in extract_from_file(
            babel_extract, str(path), keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
            options={"extensions": "jinja2.ext.i18n"},
        ):  # fmt: skip
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_every_string_of_the_jinja2_pages_is_in_the_catalogue(language: str) -> None:
    with open(LOCALE / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        catalog = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
    compiled = {key[0] if isinstance(key, tuple) else key for key in catalog}
    msgids = _jinja2_msgids()
    assert len(msgids) > 100
    missing = msgids - compiled
    assert not missing, f"{language}: not in the catalogue: {sorted(missing)[:10]}"


# Django's own messages a subscriber (or a clerk) can meet on a form: its Arabic
# catalogue lacks some of Django 5.2's, and a missing one fell back to the French
# catalogue (LANGUAGE_CODE) on an Arabic page (issue 10). The project's catalogue
# fills the gaps.
DJANGO_FORM_SOURCES = ("contrib/auth/forms.py", "contrib/auth/password_validation.py", "contrib/auth/validators.py",
                       "core/validators.py", "forms/")  # fmt: skip


def _django_form_msgids() -> set[str]:
    import django

    root = Path(django.__file__).resolve().parent
    found = set()
    for po in (root / "contrib/auth/locale/en/LC_MESSAGES/django.po", root / "conf/locale/en/LC_MESSAGES/django.po"):
        for block in po.read_text(encoding="utf-8").split("\n\n"):
            refs = " ".join(line for line in block.splitlines() if line.startswith("#:"))
            key = _key(block)
            if key and any(source in refs for source in DJANGO_FORM_SOURCES):
                found.add(key)
    return found


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_djangos_own_form_and_password_messages_are_translated(language: str) -> None:
    import django

    root = Path(django.__file__).resolve().parent
    catalog: dict = {}
    # Django's catalogues, then every one of LOCALE_PATHS (locale_django/ holds
    # what Django's Arabic lacks) that has this language.
    for directory in (root / "contrib/auth/locale", root / "conf/locale", *map(Path, settings.LOCALE_PATHS)):
        mo = directory / language / "LC_MESSAGES" / "django.mo"
        if mo.exists():
            with open(mo, "rb") as file:
                catalog.update(gettext.GNUTranslations(file)._catalog)  # type: ignore[attr-defined]
    compiled = {key[0] if isinstance(key, tuple) else key for key in catalog}
    msgids = _django_form_msgids()
    assert len(msgids) > 40
    missing = msgids - compiled
    assert not missing, f"{language}: Django messages without a translation: {sorted(missing)}"


@pytest.mark.django_db
def test_the_password_form_errors_read_arabic_on_an_arabic_page() -> None:
    from django.contrib.auth.forms import SetPasswordForm
    from django.utils import translation

    from accounts.tests.factories import UserFactory

    user = UserFactory(email="salma@example.com")
    with translation.override("ar"):
        for password in ("a1b2", "password", "12345678901"):
            form = SetPasswordForm(user, {"new_password1": password, "new_password2": password})
            assert not form.is_valid()
            for error in form.errors["new_password2"]:
                assert re.search("[\u0600-\u06ff]", error), f"not Arabic: {error!r}"
                assert not re.search("[A-Za-zÀ-ÿ]{3,}", error), f"Latin words on an Arabic page: {error!r}"
