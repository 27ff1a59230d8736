"""Management entry point of the reference server.

``python -m kiosk.testing.server.manage migrate-and-seed`` migrates the database named by
``KIOSK_SERVER_DB`` and loads the demo data (what :class:`ReferenceServer` runs before gunicorn);
any other arguments go to Django's ``manage.py`` (e.g. ``makemigrations ward``).
"""

from __future__ import annotations

import os
import sys


def migrate_and_seed() -> None:
    """Apply every migration, then create the demo users and patients."""
    from django.core.management import call_command

    from kiosk.testing.server.ward.seed import seed

    call_command("migrate", interactive=False, verbosity=0)
    seed()


def main(argv: list[str] | None = None) -> None:
    """Run ``migrate-and-seed`` or a Django management command.

    Args:
        argv: Arguments after the program name; defaults to ``sys.argv[1:]``.
    """
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kiosk.testing.server.settings")
    import django

    if args[:1] == ["migrate-and-seed"]:
        django.setup()
        migrate_and_seed()
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage", *args])


if __name__ == "__main__":
    main()
