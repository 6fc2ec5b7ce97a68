"""The settings' two faces: the embedded default, and production from the environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Production settings need a broker; nothing here connects to it.
BROKER = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DEBUG"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def _production(**overrides: str) -> dict[str, str]:
    """What a production deployment sets (each secret made for the run), with `overrides`."""
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AFRICASTALKING_CALLBACK_TOKEN": secrets.token_urlsafe(24),
        "WHATSAPP_APP_SECRET": secrets.token_urlsafe(24),
        "ALLOWED_HOSTS": "selfcare.example",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/selfcare",
        **BROKER,
    }
    return {**env, **overrides}


def test_production_settings_pass_the_deploy_check() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_broker() -> None:
    # Its beat and workers would otherwise run on an in-memory broker and lose every task.
    result = _manage("check", env=_production(CELERY_BROKER_URL=""))
    assert result.returncode != 0
    assert "CELERY_BROKER_URL must be set when DEBUG is off" in result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    for command in ("check", "makemigrations"):
        result = _manage(command, env={"DEBUG": "0", "SECRET_KEY": ""})
        assert result.returncode != 0
        # One plain line, not a traceback ending in "Models aren't loaded yet".
        assert result.stderr.strip() == "manage.py: SECRET_KEY must be set (make run sets one for the demo)."


def _settings_of(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='selfcare.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG)"
    )
    unset = {
        "DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY", "REDIS_URL",
        "AFRICASTALKING_CALLBACK_TOKEN", "WHATSAPP_APP_SECRET",
    }  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_no_environment_at_all_refuses_to_start() -> None:
    # Fail closed: no DEBUG means production, and production has no built-in key.
    out = _settings_of({})
    assert out.returncode != 0 and "SECRET_KEY must be set" in out.stderr


def test_the_demo_environment_means_sqlite_and_eager_tasks() -> None:
    out = _settings_of({"DEBUG": "1", "SECRET_KEY": secrets.token_urlsafe(50)})
    assert out.stdout.split() == ["django.db.backends.sqlite3", "True", "True"], out.stderr


@pytest.mark.parametrize("value", ["flase", "2", "debug", "enabled"])
def test_a_switch_it_does_not_understand_stops_the_process(value: str) -> None:
    out = _settings_of({"DEBUG": value, "SECRET_KEY": secrets.token_urlsafe(50)})
    assert out.returncode != 0 and f"DEBUG={value!r}" in out.stderr


HOOK_SECRETS = {"AFRICASTALKING_CALLBACK_TOKEN": "cb-token-x", "WHATSAPP_APP_SECRET": "wa-secret-x"}


@pytest.mark.parametrize(("value", "debug"), [("0", "False"), ("off", "False"), ("YES", "True"), (" true ", "True")])
def test_switches_read_the_usual_spellings(value: str, debug: str) -> None:
    out = _settings_of(
        {"DEBUG": value, "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x", **HOOK_SECRETS, **BROKER}
    )
    assert out.stdout.split()[-1:] == [debug], out.stderr


@pytest.mark.parametrize("missing", sorted(HOOK_SECRETS))
def test_production_refuses_to_start_without_a_hook_secret(missing: str) -> None:
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), **HOOK_SECRETS, missing: ""}

    out = _settings_of(env)
    result = _manage("check", env=env)

    assert out.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in out.stderr
    # manage.py says it in one line.
    assert (
        result.stderr.strip() == f"manage.py: {missing} must be set when DEBUG is off (make run sets one for the demo)."
    )


def test_with_debug_on_a_missing_hook_secret_starts_and_its_hook_says_not_configured() -> None:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='selfcare.settings'; django.setup();"
        "from django.test import Client; c = Client();"
        "print(c.post('/hooks/sms/africastalking/x/', {'id': 'ATXid_1', 'status': 'Success'}).status_code,"
        " c.post('/hooks/whatsapp/', b'{}', content_type='application/json',"
        " headers={'X-Hub-Signature-256': 'sha256=00'}).status_code)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", *HOOK_SECRETS}}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**clean, "DEBUG": "1", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "testserver"},
    )  # fmt: skip

    # 503, not 403: nothing is accepted, and the operator sees why.
    assert out.stdout.split() == ["503", "503"], out.stderr


def test_make_run_and_make_test_set_the_hook_secrets_explicitly() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for variable in ("DEMO_ENV", "TEST_ENV"):
        line = makefile.split(f"{variable} = ", 1)[1].split("\n\n", 1)[0]
        assert "DEBUG=1" in line and all(name in line for name in ("SECRET_KEY", *HOOK_SECRETS)), variable


def test_migrations_match_the_models() -> None:
    result = _manage("makemigrations", "--check", "--dry-run", env={**HOOK_SECRETS, **BROKER})
    assert result.returncode == 0, result.stdout


def test_production_has_no_konnect_key_and_never_sends_one_over_plain_http() -> None:
    base = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x", **HOOK_SECRETS, **BROKER}
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='selfcare.settings'; django.setup();"
        "from django.conf import settings as s; from payments.gateways.konnect import KonnectCheckout;"
        "print(repr(s.KONNECT_API_KEY), KonnectCheckout.available())"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KONNECT_") and k not in {"DEBUG", "DATABASE_URL"}}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **base}, capture_output=True, text=True, timeout=60
    )
    # Fail closed: no built-in key outside DEBUG, so Konnect is not offered.
    assert out.stdout.split() == ["''", "False"], out.stderr
    out = _settings_of({**base, "KONNECT_API_KEY": "k", "KONNECT_API_URL": "http://api.konnect.network"})
    assert out.returncode != 0 and "KONNECT_API_URL must be an https:// address" in out.stderr


# The demo's message path (make run: no broker, tasks in-process, console provider).
DEMO_MESSAGES = r"""
from accounts.models import Agency, Subscriber, User
from notifications.models import Message
from notifications.verification import channel_add

agency = Agency.objects.create(code="TUN-C", name_ar="تونس", name_fr="Tunis", city="Tunis", address="1 rue de Rome")
user = User.objects.create_user(email="alice@example.com", password="x")
subscriber = Subscriber.objects.create(user=user, full_name="Alice", agency=agency)
for address in ("+21620999777", "+21620999778"):
    channel_add(subscriber=subscriber, kind="sms", address=address)
print(sorted(Message.objects.values_list("status", flat=True)))
"""


def test_the_demo_prints_its_messages_without_a_broker_warning(tmp_path: Path) -> None:
    env = {
        "DEBUG": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AFRICASTALKING_CALLBACK_TOKEN": secrets.token_urlsafe(24),
        "WHATSAPP_APP_SECRET": secrets.token_urlsafe(24),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }
    assert _manage("migrate", "--noinput", "-v0", env=env).returncode == 0
    clean = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell"], cwd=ROOT, env={**clean, **env}, input=DEMO_MESSAGES,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[sms → +21620999777]" in result.stdout and "[sms → +21620999778]" in result.stdout
    assert "['sent', 'sent']" in result.stdout
    # Eager tasks still borrow a broker connection from Celery: with none named, kombu
    # fell back to AMQP on localhost and said so in the terminal after each message.
    assert "No hostname was supplied" not in result.stderr, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
