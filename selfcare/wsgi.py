"""WSGI entry point, for gunicorn in production and in the benchmarks."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "selfcare.settings")

application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules) lives as long as the
# process: moved out of the collector's reach, it is no longer walked by every
# full collection, which showed as the slowest page views.
gc.freeze()
