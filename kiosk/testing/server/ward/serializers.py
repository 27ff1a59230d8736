"""DRF serializers of the ward API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import Observation, Patient


class MeSerializer(serializers.ModelSerializer):
    """The user on the access token, as ``GET /api/me/`` shows it."""

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "first_name", "last_name"]


class PatientSerializer(serializers.ModelSerializer):
    """A patient."""

    class Meta:
        model = Patient
        fields = ["id", "name", "bed", "ward"]


class ObservationSerializer(serializers.ModelSerializer):
    """An observation; ``recorded_by`` is the username of the nurse whose token wrote it."""

    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    recorded_by = serializers.CharField(source="recorded_by.username", read_only=True)

    class Meta:
        model = Observation
        fields = [
            "id",
            "patient",
            "kind",
            "value",
            "note",
            "recorded_by",
            "recorded_at",
            "idempotency_key",
        ]
        read_only_fields = ["id", "recorded_at", "idempotency_key"]
