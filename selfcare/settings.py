"""Selfcare settings: one file, read from the environment.

Defaults fail closed: DEBUG is off and there is no built-in SECRET_KEY, so a
process started with no environment refuses to run. With only DEBUG=1 and a
SECRET_KEY (what `make run` sets) you get the embedded demo: SQLite under var/,
Celery tasks run eagerly. Production sets SECRET_KEY, ALLOWED_HOSTS,
DATABASE_URL and CELERY_BROKER_URL; nothing below exists only in production.
"""

from __future__ import annotations

import datetime as dt
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def envbool(name: str, default: bool) -> bool:
    """A yes/no switch; a value it does not understand stops the process rather
    than reading as "off" (`DEBUG=flase` must not quietly mean production)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: use one of 1/0, true/false, yes/no, on/off.")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: expected a whole number.") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Fail closed: without DEBUG=1 this is production, and production needs a real
# key. `make run` sets both for the demo (and keeps the demo's key under var/).
DEBUG = envbool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    # Refuse to start with a guessable key, even in DEBUG: there is no built-in one.
    raise ImproperlyConfigured("SECRET_KEY must be set (make run sets one for the demo).")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    # Django's admin on a site that asks staff for a TOTP code (accounts/adminsite.py).
    "accounts.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "accounts",
    "billing",
    "notifications",
    "payments",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The audit trail (django-auditlog) and the pages built on it; after the apps
    # it audits, so its admin replaces auditlog's.
    "auditlog",
    "backoffice",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the session, the query or the form: NUL never reaches a query.
    "core.middleware.RefuseUnstorableInputMiddleware",
    # "…NotForApi": Django's (or the package's) middleware, passed by for the signed
    # bank API under /api/v1/, which has no session, login, CSRF token, language
    # or flash message (core.middleware.SIGNED_API_PREFIX).
    "core.middleware.SessionMiddlewareNotForApi",
    "core.middleware.LocaleMiddlewareNotForApi",
    "django.middleware.common.CommonMiddleware",
    # Django's own, by name: `check --deploy` looks for it there (security.W003);
    # the signed API's views are csrf_exempt, so it passes them by at little cost.
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddlewareNotForApi",
    "core.middleware.OTPMiddlewareNotForApi",
    # Inside authentication (it reads request.user), so it sees every view's response.
    "core.middleware.NoStoreForPrivatePagesMiddleware",
    "core.middleware.MessageMiddlewareNotForApi",
    # Staff on a subscriber page (the admin's "view site"): back to the back office, not a 404.
    "accounts.middleware.StaffToBackOfficeMiddleware",
    # Names the user and client address of every audited write (core/audit.py).
    "core.audit.AuditMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "selfcare.urls"
WSGI_APPLICATION = "selfcare.wsgi.application"

TEMPLATES = [
    # The subscriber pages (selfcare/jinja2.py says why Jinja2).
    {
        "BACKEND": "selfcare.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "selfcare.jinja2.environment",
            "context_processors": ["django.contrib.messages.context_processors.messages"],
        },
    },
    # The admin, e-mails and message texts.
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# DATABASE_URL selects PostgreSQL (psycopg 3); without it, a SQLite file.
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=envint("CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool(
        "DATABASE_PREPARED_STATEMENTS", True
    ):
        # Server-side binding, and a statement run twice on a connection is prepared:
        # PostgreSQL stops planning the pages' few queries on every request (it
        # halved its CPU per page). Behind PgBouncer in transaction mode this needs
        # PgBouncer 1.21+ with max_prepared_statements, or DATABASE_PREPARED_STATEMENTS=0.
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        # sqlite:///path: the demo's engine elsewhere (the SQLite test run uses it).
        DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
else:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "var" / "selfcare.sqlite3",
            # Demo seeding writes in long transactions; wait rather than fail on a lock.
            # A transaction takes the write lock when it begins (IMMEDIATE): two that
            # read and then write at once (a wallet's webhook and the return page
            # completing one order) wait for each other rather than fail as "locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    # Sessions read from Redis, written through to the database: a page view
    # costs no session query, and a Redis restart logs nobody out.
    SESSION_ENGINE = "core.sessions"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Users and login ------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Refusals before any password check: per client address across usernames
    # (password spraying, accounts/backends.py), then django-axes per account and address.
    "accounts.backends.ClientAddressThrottleBackend",
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.EmailOrPhoneBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "billing:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Failed logins: 5 tries per identifier and address, then 15 minutes' wait.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = envint("AXES_PROXY_COUNT", 0) or None
AXES_VERBOSE = False

# --- Staff sign-in and limits ---------------------------------------------
# Staff need a TOTP code (django-otp) after the password to reach the back
# office; the demo (DEBUG) lets them in with the password alone, and says so.
SELFCARE_STAFF_OTP_REQUIRED = envbool("SELFCARE_STAFF_OTP_REQUIRED", not DEBUG)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "Selfcare")
# Password spraying: failed logins per client address, whatever the usernames,
# on top of axes' 5 per account and address (counted against the account, so a
# phone and an e-mail share one count).
SELFCARE_LOGIN_FAILURES_PER_CLIENT = envint("SELFCARE_LOGIN_FAILURES_PER_CLIENT", 30)
SELFCARE_LOGIN_FAILURES_WINDOW = 3600
# Password-reset mails: per address and per client address, per hour.
SELFCARE_PASSWORD_RESETS_PER_ADDRESS = envint("SELFCARE_PASSWORD_RESETS_PER_ADDRESS", 3)
SELFCARE_PASSWORD_RESETS_PER_CLIENT = envint("SELFCARE_PASSWORD_RESETS_PER_CLIENT", 10)
# Verification codes per hour: per subscriber, per destination (across
# subscribers) and per client address (portal only); 3 per subscriber and address.
SELFCARE_CODES_PER_SUBSCRIBER = envint("SELFCARE_CODES_PER_SUBSCRIBER", 5)
SELFCARE_CODES_PER_ADDRESS = envint("SELFCARE_CODES_PER_ADDRESS", 10)
SELFCARE_CODES_PER_CLIENT = envint("SELFCARE_CODES_PER_CLIENT", 10)
# Phone channels only in the operator's country (SELFCARE_PHONE_REGION) and
# these others (ISO 3166 codes, comma-separated, e.g. "DZ,LY").
SELFCARE_PHONE_REGIONS_ALLOWED = [r.upper() for r in envlist("SELFCARE_PHONE_REGIONS_ALLOWED")]

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", "fr")
LANGUAGES = [
    ("ar", _("Arabic")),
    ("fr", _("French")),
    ("en", _("English")),
]
# locale_django/: Django's own messages its Arabic catalogue lacks, apart from the
# project's catalogue that `make messages` rewrites.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_django"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = env("TIME_ZONE", "Africa/Tunis")
USE_I18N = True
USE_TZ = True

# --- Operator -------------------------------------------------------------
# One operator per deployment: its currency, phone region and VAT rate.
SELFCARE_OPERATOR_NAME = env("SELFCARE_OPERATOR_NAME", "Selfcare")
SELFCARE_CURRENCY = env("SELFCARE_CURRENCY", "TND")
SELFCARE_PHONE_REGION = env("SELFCARE_PHONE_REGION", "TN")
SELFCARE_VAT_RATE = env("SELFCARE_VAT_RATE", "0.19")
SELFCARE_PAYMENT_TERM_DAYS = envint("SELFCARE_PAYMENT_TERM_DAYS", 20)
# Seconds a subscriber's checkout stays open before it expires with nothing applied.
SELFCARE_PAYMENT_ORDER_TTL = envint("SELFCARE_PAYMENT_ORDER_TTL", 30 * 60)
# The checkout poller (payments.tasks.orders_poll, Celery beat): it asks the provider
# about orders still waiting, each at most once per POLL_SECONDS, in batches; and
# about orders that ended unpaid less than LATE_WINDOW seconds ago, each at most once
# per LATE_CHECK_SECONDS, so a wallet payment completed after the order expired is
# still applied.
SELFCARE_PAYMENT_ORDER_POLL_SECONDS = envint("SELFCARE_PAYMENT_ORDER_POLL_SECONDS", 60)
SELFCARE_PAYMENT_ORDER_POLL_BATCH = envint("SELFCARE_PAYMENT_ORDER_POLL_BATCH", 100)
SELFCARE_PAYMENT_ORDER_LATE_WINDOW = envint("SELFCARE_PAYMENT_ORDER_LATE_WINDOW", 24 * 3600)
SELFCARE_PAYMENT_ORDER_LATE_CHECK_SECONDS = envint("SELFCARE_PAYMENT_ORDER_LATE_CHECK_SECONDS", 600)
# The sandbox bank (sandbox_bank/, at /sandbox-bank/): a demo and test client of
# the bank API, signing with the public sandbox secret. Never in production.
SANDBOX_BANK_ENABLED = envbool("SANDBOX_BANK_ENABLED", DEBUG)
# Where the sandbox bank lives (empty: /sandbox-bank/ on the subscriber's host) and
# where it posts its payments (empty: the host its checkout page was served from).
SANDBOX_BANK_URL = env("SANDBOX_BANK_URL", "")
SANDBOX_BANK_SELFCARE_URL = env("SANDBOX_BANK_SELFCARE_URL", "")
# What it signs with: the seeded `Sandbox Bank` provider (payments.demo), whose
# secret is public on purpose.
SANDBOX_BANK_KEY_ID = env("SANDBOX_BANK_KEY_ID", "sandbox")
SANDBOX_BANK_SECRET = env("SANDBOX_BANK_SECRET", "sandbox-secret-change-me")
if SANDBOX_BANK_ENABLED:
    INSTALLED_APPS.append("sandbox_bank")

# --- Konnect (payments/gateways/konnect.py) --------------------------------
# Tunisia's Konnect wallet gateway: a checkout the subscriber opens from the pay
# page (provider key id "konnect"). Without an API key it is not offered. There is
# no built-in key outside DEBUG; with DEBUG (the demo, the tests) the defaults are
# those of the fake gateway (`manage.py konnect_fake`, started by `make run`).
KONNECT_API_URL = env("KONNECT_API_URL", "http://127.0.0.1:8011" if DEBUG else "https://api.konnect.network")
KONNECT_API_KEY = env("KONNECT_API_KEY", "konnect-fake-api-key" if DEBUG else "")
KONNECT_WALLET_ID = env("KONNECT_WALLET_ID", "5f7a209aeb3f76490ac4a3d1" if DEBUG else "")
KONNECT_PAYMENT_METHODS = envlist("KONNECT_PAYMENT_METHODS", "wallet,bank_card,e-DINAR")
# Where Konnect sends the payer (the origin of its payUrl), besides KONNECT_API_URL's
# own (the fake serves both): the pay page's Content-Security-Policy lets its form
# lead there and nowhere else, and a payUrl anywhere else is refused.
KONNECT_PAY_ORIGINS = envlist("KONNECT_PAY_ORIGINS", "https://gateway.konnect.network")
# Seconds to wait for Konnect's answer (connect and read), on the pay page and in the poller.
KONNECT_TIMEOUT = float(env("KONNECT_TIMEOUT", "10"))
# The webhook (GET /payments/konnect/webhook?payment_ref=) is unsigned, so a caller
# can only make us ask Konnect: calls per minute per client address and per payment.
KONNECT_WEBHOOK_PER_CLIENT = envint("KONNECT_WEBHOOK_PER_CLIENT", 120)
KONNECT_WEBHOOK_PER_PAYMENT = envint("KONNECT_WEBHOOK_PER_PAYMENT", 10)
if not DEBUG and KONNECT_API_KEY and not KONNECT_API_URL.startswith("https://"):
    # The API key would cross the network in clear.
    raise ImproperlyConfigured("KONNECT_API_URL must be an https:// address when DEBUG is off.")

# --- Payments (the bank and wallet API) ------------------------------------
# Providers' signing secrets are stored encrypted with this key, which is not in
# the database: a dump alone cannot sign a payment. Unset, it is derived from
# SECRET_KEY (HKDF), so rotating SECRET_KEY then needs the secrets re-issued.
PAYMENTS_SECRET_KEY = env("PAYMENTS_SECRET_KEY")
# A signed request's X-Timestamp may be this far from the server clock.
PAYMENTS_SIGNATURE_TOLERANCE = envint("PAYMENTS_SIGNATURE_TOLERANCE", 300)
# A provider's settlement file (payments.settlement): one day of a busy bank is
# a few thousand lines; past these limits the upload is refused in one sentence.
SELFCARE_SETTLEMENT_MAX_BYTES = envint("SELFCARE_SETTLEMENT_MAX_BYTES", 5 * 1024 * 1024)
SELFCARE_SETTLEMENT_MAX_LINES = envint("SELFCARE_SETTLEMENT_MAX_LINES", 50_000)

# The bank API only: JSON in and out, no session, no browsable pages.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Selfcare bank and wallet API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "",  # payments/apidoc.py fills it: the signature scheme and its worked example
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from drf-spectacular-sidecar: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["payments.apidoc.only_the_bank_api"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "payments.apidoc.describe"],
}

# --- Static files ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail ---------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Selfcare <no-reply@selfcare.example>")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)

# --- Celery ---------------------------------------------------------------
# Without a broker, tasks run in-process so the demo needs nothing installed.
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# Fail closed when DEBUG is off (checked below, after the hook secrets).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # Eager tasks still borrow a producer (Celery serialises their arguments through
    # it). With no broker named, kombu built an AMQP connection to localhost for
    # nothing and warned "No hostname was supplied" after every message in the
    # demo's terminal: an in-memory broker, host named, never leaves the process.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_PREFETCH", 4)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TIMEZONE = TIME_ZONE
# Bill runs may have workers of their own (`celery -A selfcare worker -Q <queue>`),
# so a national run never delays a verification code; by default they share the queue.
SELFCARE_BILL_RUN_QUEUE = env("SELFCARE_BILL_RUN_QUEUE", "celery")
CELERY_TASK_ROUTES = {"billing.tasks.bill_run_chunk": {"queue": SELFCARE_BILL_RUN_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "flag-overdue-bills": {"task": "billing.tasks.bills_flag_overdue", "schedule": 3600.0},
    # The overdue ladder (billing/dunning.py), once a day in the morning; it catches
    # up on days it missed, and each step is taken once however often it runs.
    "dunning-run": {"task": "billing.tasks.dunning_run", "schedule": crontab(hour=9, minute=0)},
    # Technician visits of tomorrow: one reminder each (hourly: a stopped beat catches up).
    "remind-appointments": {"task": "billing.tasks.appointments_remind", "schedule": 3600.0},
    # Scheduled plan changes take effect on the first of the month: daily in effect,
    # run hourly so a stopped beat catches up within the hour; each change applies once.
    "apply-plan-changes": {"task": "billing.tasks.plan_changes_apply_due", "schedule": 3600.0},
    # Re-drives the outbox: rows written while the broker was down, rows whose
    # worker died mid-send, and rows waiting out quiet hours or a back-off.
    "outbox-relay": {"task": "notifications.tasks.outbox_relay", "schedule": 10.0},
    "outbox-redrive": {"task": "notifications.tasks.outbox_redrive", "schedule": 60.0},
    # Bill runs whose chunk tasks were lost get them again (billing.runs.bill_runs_stalled).
    "redrive-bill-runs": {"task": "billing.tasks.bill_runs_redrive", "schedule": 300.0},
    # Checkouts the subscriber abandoned end as expired, with nothing applied.
    "expire-payment-orders": {"task": "payments.tasks.orders_expire", "schedule": 60.0},
    # Asks the wallets about checkouts whose callback has not come (or may never),
    # and about those that ended unpaid lately: a late payment is still applied.
    "poll-payment-orders": {
        "task": "payments.tasks.orders_poll",
        "schedule": float(SELFCARE_PAYMENT_ORDER_POLL_SECONDS),
    },
}


# --- Notifications --------------------------------------------------------
def _hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


# Non-urgent SMS and WhatsApp wait for the morning (operator time), unless their
# provider is the console, which wakes nobody (notifications.channels.registry).
SELFCARE_QUIET_HOURS = (
    _hhmm(env("SELFCARE_QUIET_START", "21:00")),
    _hhmm(env("SELFCARE_QUIET_END", "08:00")),
)
# Providers per channel: "console" prints (the demo), the others really send.
SELFCARE_SMS_PROVIDER = env("SELFCARE_SMS_PROVIDER", "console")  # console | africastalking
SELFCARE_WHATSAPP_PROVIDER = env("SELFCARE_WHATSAPP_PROVIDER", "console")  # console | whatsapp_cloud
SELFCARE_EMAIL_PROVIDER = env("SELFCARE_EMAIL_PROVIDER", "email")  # Django's EMAIL_BACKEND
AFRICASTALKING_URL = env("AFRICASTALKING_URL", "https://api.africastalking.com/version1/messaging")
AFRICASTALKING_USERNAME = env("AFRICASTALKING_USERNAME", "sandbox")
AFRICASTALKING_API_KEY = env("AFRICASTALKING_API_KEY")
AFRICASTALKING_SENDER_ID = env("AFRICASTALKING_SENDER_ID")
# Delivery reports come to /hooks/sms/africastalking/<token>/: Africa's Talking
# signs nothing, so the unguessable path is the credential. It and the WhatsApp
# app secret are required in production (checked below, with WHATSAPP_APP_SECRET).
AFRICASTALKING_CALLBACK_TOKEN = env("AFRICASTALKING_CALLBACK_TOKEN")
# Delivery reports for a message id we do not know (yet) are kept to be applied
# later, but only so many: in all, and per webhook call.
SELFCARE_UNMATCHED_REPORTS_MAX = envint("SELFCARE_UNMATCHED_REPORTS_MAX", 10_000)
SELFCARE_HOOK_MAX_REPORTS = envint("SELFCARE_HOOK_MAX_REPORTS", 100)
WHATSAPP_GRAPH_URL = env("WHATSAPP_GRAPH_URL", "https://graph.facebook.com/v21.0")
WHATSAPP_PHONE_NUMBER_ID = env("WHATSAPP_PHONE_NUMBER_ID")
WHATSAPP_ACCESS_TOKEN = env("WHATSAPP_ACCESS_TOKEN")
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET")
WHATSAPP_VERIFY_TOKEN = env("WHATSAPP_VERIFY_TOKEN")
# Fail closed, as for SECRET_KEY: production never runs a hook that cannot check
# who calls it. With DEBUG on (the demo, the tests) a missing one is allowed and
# its hook answers 503 "not configured"; it never accepts unsigned input.
if not DEBUG:
    for _name in ("AFRICASTALKING_CALLBACK_TOKEN", "WHATSAPP_APP_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} must be set when DEBUG is off (make run sets one for the demo).")
# Production without a broker would start its beat and workers on the in-memory
# one (see Celery above) and lose every scheduled task (the overdue sweep, the
# dunning run, the outbox relay) without a word.
if not DEBUG and CELERY_TASK_ALWAYS_EAGER:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be set when DEBUG is off (make run runs its tasks in-process instead)."
    )
SELFCARE_PROVIDER_TIMEOUT = float(env("SELFCARE_PROVIDER_TIMEOUT", "10"))
# A message is retried with exponential back-off, then failed for good.
SELFCARE_OUTBOX_MAX_ATTEMPTS = envint("SELFCARE_OUTBOX_MAX_ATTEMPTS", 6)
SELFCARE_OUTBOX_BATCH = envint("SELFCARE_OUTBOX_BATCH", 200)
# Provider calls in flight at once per batch: they wait on the network.
SELFCARE_OUTBOX_SEND_THREADS = envint("SELFCARE_OUTBOX_SEND_THREADS", 8)
# A row left in "sending" this long (its worker died) goes back to pending.
SELFCARE_OUTBOX_STALE_SECONDS = envint("SELFCARE_OUTBOX_STALE_SECONDS", 300)
# One relay kick pending at a time (notifications.relay.relay_kick_wanted): a
# commit that writes messages while one is pending publishes nothing. A kick the
# broker lost blocks the next ones this long at most (the beat relays every 10 s).
SELFCARE_OUTBOX_KICK_SECONDS = envint("SELFCARE_OUTBOX_KICK_SECONDS", 10)
# Reminders go out this many days before the due date; an overdue notice
# announces disconnection this many days after the bill is flagged overdue.
# The overdue ladder's days are in the back office (DunningLadderStep); this is the
# least notice a disconnection warning gives when it goes out late (catch-up).
SELFCARE_DUNNING_MIN_NOTICE_DAYS = envint("SELFCARE_DUNNING_MIN_NOTICE_DAYS", 7)
# Paid SMS alert service: yearly fee, added to the first bill of each year.
SELFCARE_SMS_ALERT_YEARLY_FEE = env("SELFCARE_SMS_ALERT_YEARLY_FEE", "1.000")

# --- Bill runs --------------------------------------------------------------
# Accounts per chunk: one transaction and one Celery task each.
SELFCARE_BILL_RUN_CHUNK = envint("SELFCARE_BILL_RUN_CHUNK", 5000)
# A running bill run none of whose chunks ended for this long has lost its tasks:
# the beat hands its pending chunks out again.
SELFCARE_BILL_RUN_STALE_SECONDS = envint("SELFCARE_BILL_RUN_STALE_SECONDS", 900)
# PostgreSQL's work_mem while a chunk is billed (its lines are sorted in memory).
SELFCARE_BILL_RUN_WORK_MEM = env("SELFCARE_BILL_RUN_WORK_MEM", "64MB")
# A meter not read this month is billed on the average of its last readings (at most this many).
SELFCARE_ESTIMATE_PERIODS = envint("SELFCARE_ESTIMATE_PERIODS", 6)
if SELFCARE_BILL_RUN_CHUNK < 1 or not 1 <= SELFCARE_ESTIMATE_PERIODS <= 24:
    raise ImproperlyConfigured("SELFCARE_BILL_RUN_CHUNK must be >= 1 and SELFCARE_ESTIMATE_PERIODS within 1..24.")

# --- Security -------------------------------------------------------------
# Production (DEBUG off) is HTTPS-only by default; each switch can be turned off
# behind a proxy that does it instead.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_HTTPS_PROXY", False) else None
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600)

# The Africa's Talking callback token is part of its URL: every logger that
# prints a path masks it (core/logging.py; gunicorn's loggers in CoreConfig.ready).
# Content-Security-Policy (django-csp 4): only our own scripts, styles and images,
# nothing inline (no 'unsafe-inline' anywhere: core/tests/test_headers.py parses
# every page for inline script, style and handlers). The SVG charts are inline
# markup styled by presentation attributes and our stylesheet, which CSP allows.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# The audit trail stores before/after values as JSON.
AUDITLOG_STORE_JSON_CHANGES = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "core.logging.MaskSecretsInPaths"}},
    "formatters": {
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["mask_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # WeasyPrint (bill PDFs) logs each step of every drawing at INFO.
        "weasyprint": {"level": "WARNING"},
        # Filters on the loggers themselves act before any handler, test capture included.
        "django.request": {"filters": ["mask_secrets"]},
        "django.security": {"filters": ["mask_secrets"]},
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["mask_secrets"],
        },
    },
}

# --- Bill PDFs ------------------------------------------------------------
# The operator's logo on the bill PDFs: a PNG, JPEG or SVG file (empty: the name).
SELFCARE_OPERATOR_LOGO = env("SELFCARE_OPERATOR_LOGO", "")
if SELFCARE_OPERATOR_LOGO and not Path(SELFCARE_OPERATOR_LOGO).is_file():
    raise ImproperlyConfigured(f"SELFCARE_OPERATOR_LOGO: no such file {SELFCARE_OPERATOR_LOGO!r}.")
if SELFCARE_OPERATOR_LOGO and Path(SELFCARE_OPERATOR_LOGO).suffix.lower() not in {".png", ".jpg", ".jpeg", ".svg"}:
    raise ImproperlyConfigured("SELFCARE_OPERATOR_LOGO must be a .png, .jpg or .svg file.")
# Downloads per subscriber an hour (drawing one costs a few hundred ms of CPU).
SELFCARE_BILL_PDFS_PER_HOUR = envint("SELFCARE_BILL_PDFS_PER_HOUR", 30)
# How long a drawn PDF is kept for the next download of the same bill, unchanged.
SELFCARE_BILL_PDF_CACHE_SECONDS = envint("SELFCARE_BILL_PDF_CACHE_SECONDS", 600)
# Paper copies in one printed batch (one PDF); the rest wait for the next.
SELFCARE_PRINT_BATCH_MAX = envint("SELFCARE_PRINT_BATCH_MAX", 200)
