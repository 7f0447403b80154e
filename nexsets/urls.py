from __future__ import annotations

from django.urls import path

from nexsets import views

app_name = "nexsets"
urlpatterns = [
    path("", views.nexset_list, name="list"),
    path("new/", views.nexset_create, name="create"),
    path("new/webhook/", views.nexset_create_webhook, name="create_webhook"),
    path("<int:pk>/delete/", views.nexset_delete, name="delete"),
    path("<int:pk>/", views.nexset_detail, name="detail"),
    path("<int:pk>/append/", views.nexset_append, name="append"),
    path("<int:pk>/webhook-token/", views.webhook_token, name="webhook_token"),
    path("<int:pk>/records/", views.nexset_records, name="records"),
]
