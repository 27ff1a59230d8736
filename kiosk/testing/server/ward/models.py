"""Models of the ward app: patients, their observations, and the test-only request counters."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Patient(models.Model):
    """A patient in a bed on a ward."""

    name = models.CharField(max_length=120)
    bed = models.CharField(max_length=16)
    ward = models.CharField(max_length=32, db_index=True)

    class Meta:
        ordering = ["ward", "bed"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ward}/{self.bed})"


class Observation(models.Model):
    """One recorded observation (e.g. a blood pressure), written by the nurse on the token."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="observations")
    kind = models.CharField(max_length=32)
    value = models.CharField(max_length=64)
    note = models.TextField(blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="observations"
    )
    # Read through django.utils.timezone so time-machine moves it with the client's virtual clock.
    recorded_at = models.DateTimeField(default=timezone.now)
    # Unique, so two workers racing on one key cannot both insert (the loser re-reads the winner).
    idempotency_key = models.CharField(max_length=128, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}={self.value} for patient {self.patient_id}"


class StatCounter(models.Model):
    """One named request counter: a table, so every gunicorn worker counts into one place."""

    key = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
