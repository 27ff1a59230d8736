"""Views of the ward API (JWT required): who am I, patients, and their observations.

``POST /api/patients/<id>/observations/`` honours an ``Idempotency-Key`` header: a key seen before
answers 200 with the stored observation instead of writing a second one, which is what makes a
replay after a lost response safe (DESIGN §3, replay rules).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Observation, Patient
from .serializers import MeSerializer, ObservationSerializer, PatientSerializer


class MeView(APIView):
    """``GET /api/me/``: the user the access token belongs to."""

    def get(self, request: Request) -> Response:
        """Return id, username, first and last name of the token's user."""
        return Response(MeSerializer(request.user).data)


class PatientListView(generics.ListAPIView):
    """``GET /api/patients/``: every patient, by ward and bed."""

    queryset = Patient.objects.all()
    serializer_class = PatientSerializer


class PatientDetailView(generics.RetrieveAPIView):
    """``GET /api/patients/<id>/``: one patient."""

    queryset = Patient.objects.all()
    serializer_class = PatientSerializer


class ObservationListCreateView(APIView):
    """``GET``/``POST /api/patients/<id>/observations/``: list or record observations."""

    def get(self, request: Request, pk: int) -> Response:
        """List the patient's observations, oldest first."""
        patient = get_object_or_404(Patient, pk=pk)
        observations = patient.observations.select_related("recorded_by")
        return Response(ObservationSerializer(observations, many=True).data)

    def post(self, request: Request, pk: int) -> Response:
        """Record an observation (201), or return the one already stored under the key (200)."""
        patient = get_object_or_404(Patient, pk=pk)
        key = request.headers.get("Idempotency-Key") or None
        if key is not None:
            existing = _by_key(key)
            if existing is not None:
                return _replayed(existing, patient)
        serializer = ObservationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            # A savepoint, so the IntegrityError of a lost race leaves the connection usable.
            with transaction.atomic():
                observation = serializer.save(
                    patient=patient, recorded_by=request.user, idempotency_key=key
                )
        except IntegrityError:
            existing = _by_key(key) if key is not None else None
            if existing is None:
                raise
            return _replayed(existing, patient)
        return Response(ObservationSerializer(observation).data, status=status.HTTP_201_CREATED)


def _by_key(key: str) -> Observation | None:
    return Observation.objects.select_related("recorded_by").filter(idempotency_key=key).first()


def _replayed(existing: Observation, patient: Patient) -> Response:
    if existing.patient_id != patient.pk:
        # Same key, different request: refusing beats silently answering with another patient's row.
        return Response(
            {"detail": "Idempotency-Key already used for another patient.", "code": "key_reused"},
            status=status.HTTP_409_CONFLICT,
        )
    return Response(ObservationSerializer(existing).data, status=status.HTTP_200_OK)
