"""A custom user model that logs in by email (``KIOSK_SERVER_USERNAME_FIELD=email`` only)."""
