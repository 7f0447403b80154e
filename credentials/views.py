from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.deletion import confirm_delete
from credentials.forms import CredentialForm
from credentials.models import Credential
from credentials.testing import test_credential
from teams.access import get_for_team, membership_for, require_editor, team_for


def _report_saved(request: HttpRequest, credential: Credential) -> None:
    text = f"Saved credential {credential.name}. {credential.status_message}"
    if credential.status == Credential.Status.VALID:
        messages.success(request, text)
    else:
        messages.warning(request, text)


@require_GET
def credential_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "credentials/list.html",
        {"credentials": team_for(request).credentials.all()},
    )


@require_http_methods(["GET", "POST"])
def credential_create(request: HttpRequest) -> HttpResponse:
    team = team_for(request)
    form = CredentialForm(request.POST or None, team=team)
    if request.method == "POST":
        require_editor(request)
        if form.is_valid():
            credential = Credential(
                team=team,
                name=form.cleaned_data["name"],
                region=form.cleaned_data["region"],
                rate_limit=form.cleaned_data["rate_limit"],
            )
            credential.set_api_key(form.cleaned_data["api_key"])
            credential.save()
            test_credential(credential)
            _report_saved(request, credential)
            return redirect("credentials:detail", pk=credential.pk)
    return render(request, "credentials/create.html", {"form": form})


@require_http_methods(["GET", "POST"])
def credential_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a credential's name, region, rate limit or key.

    Destinations using it pick up the change with their next request; one
    paused because PX rejected the old key stays paused until activated.
    """
    team = team_for(request)
    credential = get_for_team(request, Credential, pk=pk)
    initial = {
        "name": credential.name,
        "region": credential.region,
        "rate_limit": credential.rate_limit,
    }
    form = CredentialForm(
        request.POST or None, team=team, instance=credential, initial=initial
    )
    if request.method == "POST":
        require_editor(request)
        if form.is_valid():
            credential.name = form.cleaned_data["name"]
            credential.region = form.cleaned_data["region"]
            credential.rate_limit = form.cleaned_data["rate_limit"]
            if form.cleaned_data["api_key"]:
                credential.set_api_key(form.cleaned_data["api_key"])
            credential.save()
            test_credential(credential)
            _report_saved(request, credential)
            return redirect("credentials:detail", pk=credential.pk)
    return render(
        request, "credentials/edit.html", {"form": form, "credential": credential}
    )


@require_GET
def credential_detail(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_for_team(request, Credential, pk=pk)
    return render(
        request,
        "credentials/detail.html",
        {"credential": credential, "can_edit": membership_for(request).can_edit},
    )


@require_POST
def credential_test(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    credential = test_credential(get_for_team(request, Credential, pk=pk))
    if request.htmx:
        return render(request, "credentials/status.html", {"credential": credential})
    return redirect("credentials:detail", pk=credential.pk)


@require_http_methods(["GET", "POST"])
def credential_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a credential and its encrypted key, unless a destination uses it."""
    credential = get_for_team(request, Credential, pk=pk)
    return confirm_delete(
        request,
        credential,
        kind="credential",
        blockers=list(credential.destinations.all()),
        blocked_reason="These destinations use this credential: delete them first.",
        consequence="The encrypted API key is deleted. The key stays valid in PX until you revoke it there.",
        back_url=reverse("credentials:detail", args=[credential.pk]),
        done_message=f"Deleted credential {credential.name} and its stored key.",
        done_url=reverse("credentials:list"),
    )
