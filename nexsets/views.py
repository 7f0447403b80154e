from __future__ import annotations

import io
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.deletion import confirm_delete
from nexsets import ingest
from nexsets.forms import AppendForm, UploadForm
from nexsets.models import Nexset
from nexsets.parsing import UploadError, iter_records
from teams.access import get_for_team, require_editor, team_for

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 10
WEBHOOK_MAX_BYTES = 10 * 2**20


@require_GET
def nexset_list(request: HttpRequest) -> HttpResponse:
    nexsets = team_for(request).nexsets.all()
    return render(request, "nexsets/list.html", {"nexsets": nexsets})


@require_http_methods(["GET", "POST"])
def nexset_create(request: HttpRequest) -> HttpResponse:
    require_editor(request) if request.method == "POST" else None
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        # File names may be up to 255 characters, longer than a Nexset name.
        name = (
            form.cleaned_data["name"]
            or upload.name[: Nexset._meta.get_field("name").max_length]
        )
        try:
            nexset = ingest.create_from_upload(
                team_for(request), name, upload, upload.name
            )
        except UploadError as exc:
            form.add_error(
                "file", f"{upload.name} was rejected and nothing was stored: {exc}"
            )
        else:
            messages.success(
                request,
                f"Stored {nexset.record_count} record{pluralize(nexset.record_count)} from {upload.name}.",
            )
            return redirect(nexset)
    return render(request, "nexsets/create.html", {"form": form})


@require_GET
def nexset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    nexset = get_for_team(request, Nexset, pk=pk)
    return render(
        request,
        "nexsets/detail.html",
        {
            "nexset": nexset,
            "samples": nexset.records.order_by("position")[:SAMPLE_SIZE],
            "append_form": AppendForm(),
            "destinations": nexset.destinations.all(),
            "webhook_url": request.build_absolute_uri(
                reverse("nexset_webhook", args=[nexset.pk])
            ),
        },
    )


@require_GET
def nexset_records(request: HttpRequest, pk: int) -> HttpResponse:
    nexset = get_for_team(request, Nexset, pk=pk)
    page = Paginator(nexset.records.order_by("position"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "nexsets/records.html", {"nexset": nexset, "page": page})


@require_POST
def nexset_append(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    nexset = get_for_team(request, Nexset, pk=pk)
    form = AppendForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            count = ingest.append_upload(nexset, upload, upload.name)
        except UploadError as exc:
            messages.error(
                request, f"{upload.name} was rejected and nothing was stored: {exc}"
            )
        else:
            messages.success(
                request, f"Added {count} record{pluralize(count)} from {upload.name}."
            )
    else:
        messages.error(request, "Choose a file to add.")
    return redirect(nexset)


@require_POST
def webhook_token(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    nexset = get_for_team(request, Nexset, pk=pk)
    token = nexset.new_webhook_token()
    nexset.save(update_fields=["webhook_token_hash", "updated"])
    url = request.build_absolute_uri(reverse("nexset_webhook", args=[nexset.pk]))
    return render(
        request,
        "nexsets/webhook_token.html",
        {"nexset": nexset, "token": token, "webhook_url": url},
    )


@csrf_exempt
@login_not_required
@require_POST
def webhook_receive(request: HttpRequest, pk: int) -> HttpResponse:
    """Add the posted JSON records to a Nexset; the token is its credential."""
    # The token travels only in a header: a query string ends up in access logs.
    token = request.headers.get("X-Nexset-Token", "")
    try:
        nexset = Nexset.objects.get(pk=pk)
    except Nexset.DoesNotExist:
        nexset = None
    if nexset is None or not nexset.check_webhook_token(token):
        return JsonResponse({"error": "unknown Nexset or invalid token"}, status=404)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > WEBHOOK_MAX_BYTES or len(request.body) > WEBHOOK_MAX_BYTES:
        return JsonResponse(
            {"error": f"the body is larger than {WEBHOOK_MAX_BYTES} bytes"}, status=413
        )
    try:
        # The same rules as a JSON upload: objects only, no duplicate keys,
        # bounded nesting. Nothing is stored unless every record is valid.
        count = ingest.append_records(
            nexset,
            iter_records(
                io.BytesIO(request.body), "webhook.json", max_bytes=WEBHOOK_MAX_BYTES
            ),
        )
    except UploadError as exc:
        return JsonResponse({"error": f"nothing was stored: {exc}"}, status=400)
    logger.info("Webhook added %s records to Nexset %s", count, nexset.pk)
    return JsonResponse(
        {"stored": count, "record_count": nexset.record_count}, status=202
    )


@require_POST
def nexset_create_webhook(request: HttpRequest) -> HttpResponse:
    """Create an empty Nexset that records posted to its webhook URL will fill."""
    require_editor(request)
    name = request.POST.get("name", "").strip()
    max_length = Nexset._meta.get_field("name").max_length
    if not name or len(name) > max_length:
        messages.error(
            request,
            f"Enter a name of 1 to {max_length} characters for the webhook Nexset.",
        )
        return redirect("nexsets:create")
    nexset = Nexset.objects.create(
        team=team_for(request), name=name, source=Nexset.Source.WEBHOOK
    )
    messages.success(
        request,
        f"Created {nexset.name}. Create a token below, then post records to its webhook URL.",
    )
    return redirect(nexset)


@require_http_methods(["GET", "POST"])
def nexset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a Nexset and its records, unless a destination still sends it."""
    nexset = get_for_team(request, Nexset, pk=pk)
    return confirm_delete(
        request,
        nexset,
        kind="Nexset",
        blockers=list(nexset.destinations.all()),
        blocked_reason="These destinations send this Nexset: delete them first.",
        consequence=f"Its {nexset.record_count} records are deleted and cannot be recovered.",
        back_url=nexset.get_absolute_url(),
        done_message=f"Deleted Nexset {nexset.name} and its records.",
        done_url=reverse("nexsets:list"),
    )
