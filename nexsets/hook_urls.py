from __future__ import annotations

from django.urls import path

from nexsets import views

urlpatterns = [
    path("nexsets/<int:pk>/", views.webhook_receive, name="nexset_webhook"),
]
