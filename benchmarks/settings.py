"""Settings for served benchmarks: the app's own settings, read from the same
environment (DEBUG=0, DATABASE_URL, ...), with two differences:

- ROOT_URLCONF adds the bare baseline views (benchmarks/urls.py);
- static files use plain StaticFilesStorage, so no collectstatic is needed
  (the manifest storage's url() is a dict lookup; the pages serve no static files).

Optional BENCH_* variables try an app change without editing the app; unset, the
app is measured as it is (see portal.py --help):

- BENCH_SESSION_ENGINE: another SESSION_ENGINE, e.g. ...sessions.backends.cached_db;
- BENCH_DROP_MIDDLEWARE: comma-separated dotted paths to leave out of MIDDLEWARE;
- BENCH_ROOT_URLCONF: a URLconf module to serve instead of benchmarks.urls
  (variant views: it must still define /bare/<pk>/);
- BENCH_TEMPLATE_DIRS: os.pathsep-separated directories searched before the
  pages' own (variant Jinja2 templates of the subscriber pages);
- BENCH_DB_OPTIONS: JSON merged into DATABASES["default"]["OPTIONS"], e.g.
  {"prepare_threshold": null} to measure without prepared statements;
- BENCH_DUMMY_CACHES: comma-separated cache aliases replaced by DummyCache (every
  read a miss); an alias the app does not define is skipped.

portal.py also sets BENCH_CACHE_PREFIX, a KEY_PREFIX of its own for every cache,
so that nothing cached by an earlier run (or by anything else on that Redis
database) is served, and removes those keys afterwards.
"""

import json
import os

from selfcare.settings import *  # noqa: F403
from selfcare.settings import CACHES, DATABASES, MIDDLEWARE, STATIC_ROOT, TEMPLATES

ROOT_URLCONF = os.environ.get("BENCH_ROOT_URLCONF") or "benchmarks.urls"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# portal.py points this at an empty temporary directory: WhiteNoise scans it at
# start-up and would warn about a missing ./staticfiles (the pages serve none).
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT") or STATIC_ROOT

if os.environ.get("BENCH_SESSION_ENGINE"):
    SESSION_ENGINE = os.environ["BENCH_SESSION_ENGINE"]

_drop = {m.strip() for m in os.environ.get("BENCH_DROP_MIDDLEWARE", "").split(",") if m.strip()}
MIDDLEWARE = [m for m in MIDDLEWARE if m not in _drop]

_template_dirs = [d for d in os.environ.get("BENCH_TEMPLATE_DIRS", "").split(os.pathsep) if d]
if _template_dirs:
    TEMPLATES = [{**TEMPLATES[0], "DIRS": [*_template_dirs, *TEMPLATES[0]["DIRS"]]}, *TEMPLATES[1:]]

if os.environ.get("BENCH_DB_OPTIONS"):
    _default = DATABASES["default"]
    DATABASES = {
        **DATABASES,
        "default": {
            **_default,
            "OPTIONS": {**_default.get("OPTIONS", {}), **json.loads(os.environ["BENCH_DB_OPTIONS"])},
        },
    }

if os.environ.get("BENCH_CACHE_PREFIX"):
    CACHES = {alias: {**conf, "KEY_PREFIX": os.environ["BENCH_CACHE_PREFIX"]} for alias, conf in CACHES.items()}
for _alias in filter(None, (a.strip() for a in os.environ.get("BENCH_DUMMY_CACHES", "").split(","))):
    if _alias in CACHES:
        CACHES = {**CACHES, _alias: {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

# payments.py publishes the outbox relay's kicks to a queue of its own on the
# broker (nothing consumes it during the run) and deletes it afterwards.
if os.environ.get("BENCH_CELERY_QUEUE"):
    CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_CELERY_QUEUE"]
