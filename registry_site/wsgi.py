import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
application = get_wsgi_application()

# Load every view now, not on the first request: that costs ~0.5 s (the JSON API's schema
# models), which the first callers of a fresh worker would otherwise wait for.
import_module(settings.ROOT_URLCONF)

# What is loaded now lives as long as the process: freezing it keeps the garbage collector from
# walking those ~170,000 objects again on every full collection (bench/README.md measures it).
gc.collect()
gc.freeze()
