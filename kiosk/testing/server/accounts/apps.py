"""The accounts app: installed only in the email-login variant of the reference server."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """A user model with ``USERNAME_FIELD = "email"``, like many hospital deployments."""

    name = "kiosk.testing.server.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
