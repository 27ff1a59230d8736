"""Demo data of the reference server: four users and a ward of patients. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Patient
from .stats import reset as reset_stats

WARD = "4B"


@dataclass(frozen=True)
class DemoUser:
    """A demo account: credentials, name, and whether it may log in."""

    username: str
    password: str
    first_name: str
    last_name: str
    is_active: bool = True


DEMO_USERS = (
    DemoUser("alice", "alice-secret", "Alice", "Nurse"),
    DemoUser("bob", "bob-secret", "Bob", "Charge"),
    DemoUser("carol", "carol-secret", "Carol", "Agency"),
    # Inactive: login answers 401 "No active account...", refresh answers 401 no_active_account.
    DemoUser("dave", "dave-secret", "Dave", "Leaver", is_active=False),
)

DEMO_PATIENTS = (
    ("Ada Byron", "1"),
    ("Ben Okafor", "2"),
    ("Chen Wei", "3"),
    ("Dora Silva", "4"),
    ("Emil Novak", "5"),
    ("Fatima Haddad", "6"),
    ("Gus Larsen", "7"),
    ("Hana Sato", "8"),
)


def seed() -> None:
    """Create (or repair) the demo users and patients, and make sure every counter row exists."""
    user_model = get_user_model()
    with transaction.atomic():
        for demo in DEMO_USERS:
            user, _created = user_model.objects.get_or_create(username=demo.username)
            if user_model.USERNAME_FIELD == "email":  # the email-login variant
                user.email = f"{demo.username}@ward.example"
            user.first_name, user.last_name = demo.first_name, demo.last_name
            user.is_active = demo.is_active
            if not user.check_password(demo.password):
                user.set_password(demo.password)
            user.save()
        for name, bed in DEMO_PATIENTS:
            Patient.objects.get_or_create(ward=WARD, bed=bed, defaults={"name": name})
        reset_stats()
