"""WSGI entry point of the reference server (``kiosk.testing.server.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.testing.server.settings")

application = get_wsgi_application()
