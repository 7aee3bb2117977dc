import os

import django
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banatie.settings")
django.setup(set_prefix=False)
# Before the handler loads the middleware: Django's instrumentation adds its own.
from banatie.tracing import tracing_setup  # noqa: E402

tracing_setup()
application = get_wsgi_application()
