"""The routes of the example API."""

from __future__ import annotations

from django.urls import path

from examples.django_app import views

urlpatterns = [
    path("health", views.health),
    path("api/v1/me", views.Me.as_view()),
    path("api/v1/reports", views.Reports.as_view()),
    path("api/v1/reports/<str:report_id>", views.Report.as_view()),
]
