"""Login forms that apply the login throttle before checking the password."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from teams.throttle import LoginThrottle, describe_wait

THROTTLED_MESSAGE = (
    "Too many failed login attempts for this username or from this address. "
    "Wait %(wait)s and try again."
)


class ThrottledLoginMixin:
    """Reject a throttled login before authenticating and count failed ones.

    Mix into an AuthenticationForm subclass, before it in the bases.
    """

    request: Any
    cleaned_data: dict[str, Any]
    user_cache: Any

    def clean(self) -> dict[str, Any]:
        throttle = LoginThrottle.for_request(self.request, self.cleaned_data.get("username") or "")
        wait = throttle.wait_seconds()
        if wait:
            raise forms.ValidationError(
                THROTTLED_MESSAGE, code="throttled", params={"wait": describe_wait(wait)}
            )
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError as exc:
            if exc.code == "invalid_login":
                throttle.record_failure()
            raise
        # AuthenticationForm skips authentication when the password is empty,
        # so only a user found by authenticate() may reset the counter.
        if self.user_cache is not None:
            throttle.reset_username()
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
