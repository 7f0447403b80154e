"""Team lookups for views: objects of another team return 404, never 403."""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from teams.models import Membership, Team

M = TypeVar("M", bound=Model)


def membership_for(request: HttpRequest) -> Membership:
    try:
        return request.user.membership  # type: ignore[union-attr]
    except Membership.DoesNotExist:
        raise Http404("This login belongs to no team") from None


def team_for(request: HttpRequest) -> Team:
    return membership_for(request).team


def get_for_team(request: HttpRequest, model: type[M], **lookup: object) -> M:
    """Return the object of the user's team, or raise 404."""
    return get_object_or_404(model, team=team_for(request), **lookup)


def require_editor(request: HttpRequest) -> None:
    if not membership_for(request).can_edit:
        raise PermissionDenied("Viewers cannot change configuration")
