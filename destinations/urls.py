from __future__ import annotations

from django.urls import path

from destinations import views

app_name = "destinations"
urlpatterns = [
    path("", views.destination_list, name="list"),
    path("new/", views.destination_create, name="create"),
    path("<int:pk>/", views.destination_detail, name="detail"),
    path("<int:pk>/configure/", views.destination_configure, name="configure"),
    path("<int:pk>/preview/", views.destination_preview, name="preview"),
    path("<int:pk>/test/", views.destination_test, name="test"),
    path("<int:pk>/dry-run/", views.destination_dry_run, name="dry_run"),
    path("<int:pk>/activate/", views.destination_activate, name="activate"),
    path("<int:pk>/pause/", views.destination_pause, name="pause"),
    path("<int:pk>/retry-failed/", views.destination_retry_failed, name="retry_failed"),
    path("<int:pk>/runs/", views.destination_runs, name="runs"),
    path("<int:pk>/delete/", views.destination_delete, name="delete"),
    path("<int:pk>/failures.csv", views.destination_failures_csv, name="failures_csv"),
    path("<int:pk>/runs/<int:run_pk>/", views.run_detail, name="run"),
]
