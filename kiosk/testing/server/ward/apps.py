"""Django app configuration of the ward app."""

from django.apps import AppConfig


class WardConfig(AppConfig):
    """The ward app (label ``ward``)."""

    name = "kiosk.testing.server.ward"
    label = "ward"
    default_auto_field = "django.db.models.BigAutoField"
