"""The confirm-then-delete page shared by Nexsets, destinations and credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from teams.access import require_editor


def confirm_delete(
    request: HttpRequest,
    obj: Model,
    *,
    kind: str,
    blockers: Sequence[Any],
    blocked_reason: str,
    consequence: str,
    back_url: str,
    done_message: str,
    done_url: str,
) -> HttpResponse:
    """Show what deleting `obj` does on GET; delete it on POST unless blocked.

    Anyone of the team may look at the page; only editors may delete.
    """
    if request.method == "POST":
        require_editor(request)
        if not blockers:
            obj.delete()
            messages.success(request, done_message)
            return redirect(done_url)
    return render(
        request,
        "confirm_delete.html",
        {
            "kind": kind,
            "object": obj,
            "blockers": blockers,
            "blocked_reason": blocked_reason,
            "consequence": consequence,
            "back_url": back_url,
        },
    )
