from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import views
from teams.views import ThrottledLoginView

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("nexsets/", include("nexsets.urls")),
    path("credentials/", include("credentials.urls")),
    path("destinations/", include("destinations.urls")),
    path("hooks/", include("nexsets.hook_urls")),
    path("admin/", admin.site.urls),
]
