"""The email-login user model: simplejwt's obtain view then wants ``{"email", "password"}``."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Django's user with a unique email as the login name (the username stays, for display)."""

    email = models.EmailField(unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]
