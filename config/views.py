from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from teams.access import team_for


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    team = team_for(request)
    return render(
        request,
        "home.html",
        {
            "nexsets": team.nexsets.all()[:10],
            "destinations": team.destinations.select_related("nexset")[:10],
            "credentials": team.credentials.all(),
        },
    )
