"""Settings for served benchmarks: the app's own settings, read from the same
environment (DEBUG=0, DATABASE_URL, ...), with two differences:

- ROOT_URLCONF adds the bare baseline view (benchmarks/urls.py);
- static files use plain StaticFilesStorage, so no collectstatic is needed
  (the manifest storage's url() is a dict lookup; the pages serve no static files).

BENCH_* variables try app changes without editing the app (see portal.py --help):
BENCH_SESSION_ENGINE, BENCH_DROP_MIDDLEWARE (comma-separated dotted paths).
"""

import os

from selfcare.settings import *  # noqa: F403
from selfcare.settings import MIDDLEWARE

ROOT_URLCONF = "benchmarks.urls"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if os.environ.get("BENCH_SESSION_ENGINE"):
    SESSION_ENGINE = os.environ["BENCH_SESSION_ENGINE"]

_drop = {m.strip() for m in os.environ.get("BENCH_DROP_MIDDLEWARE", "").split(",") if m.strip()}
MIDDLEWARE = [m for m in MIDDLEWARE if m not in _drop]
