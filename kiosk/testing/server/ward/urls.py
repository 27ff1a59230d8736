"""URLs of the ward API (mounted under ``/api/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("patients/", views.PatientListView.as_view(), name="patient-list"),
    path("patients/<int:pk>/", views.PatientDetailView.as_view(), name="patient-detail"),
    path(
        "patients/<int:pk>/observations/",
        views.ObservationListCreateView.as_view(),
        name="observation-list",
    ),
]
