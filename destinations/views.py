from __future__ import annotations

import csv
import json
import logging
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.db.models.functions import TruncSecond
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import Template
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.deletion import confirm_delete
from credentials.models import Credential
from destinations import manual, runs
from destinations.audit import record_change, snapshot
from destinations.forms import (
    CONSTANT_SOURCE,
    DestinationCreateForm,
    initial_config,
    mapping_rows,
    parse_config,
)
from destinations.models import Destination, Exchange, RecordResult, Run
from destinations.preview import DryRun, SampleError, build_panel, dry_run, send_test
from nexsets.models import Nexset
from px.client import PxTransportError
from px.templates import TEMPLATES
from teams.access import get_for_team, membership_for, require_editor, team_for

logger = logging.getLogger(__name__)

FAILURES_SHOWN = 50
TEST_HISTORY_SHOWN = 5

# Base of configure.html for HTMX requests: the content block alone, so the
# response is the one fragment the request swaps in.
FRAGMENT_BASE = Template("{% block content %}{% endblock %}")

# Form actions that re-render the configure form without saving.
RESET_ACTIONS = ("change_mode", "change_template")


@require_GET
def destination_list(request: HttpRequest) -> HttpResponse:
    destinations = team_for(request).destinations.select_related("nexset")
    return render(request, "destinations/list.html", {"destinations": destinations})


def fetch_custom_types(
    credential: Credential, object_type: str
) -> tuple[dict[str, str], str]:
    """Read the subscription's custom attribute types for users or accounts.

    Returns the types by apiName and, when they could not be read, a message
    saying why. Events have no custom attribute definitions.
    """
    if object_type == "event":
        return {}, ""
    client = credential.client()
    try:
        response = client.get_attributes(object_type)
    except PxTransportError as exc:
        logger.warning(
            "Reading %s attributes with credential %s failed: %s",
            object_type,
            credential.pk,
            exc,
        )
        return {}, f"Custom {object_type} attributes could not be read: {exc}."
    finally:
        client.close()
    body = response.json() if response.ok else None
    if not isinstance(body, list):
        logger.warning(
            "Reading %s attributes with credential %s failed: %s",
            object_type,
            credential.pk,
            response.error_message(),
        )
        return (
            {},
            f"Custom {object_type} attributes could not be read: {response.error_message()}.",
        )
    types = {
        item["apiName"]: item.get("type", "STRING")
        for item in body
        if isinstance(item, dict)
        and item.get("apiName")
        and item.get("origin", "CUSTOM") == "CUSTOM"
        and item.get("state", "ENABLED") == "ENABLED"
    }
    return types, ""


@require_http_methods(["GET", "POST"])
def destination_create(request: HttpRequest) -> HttpResponse:
    team = team_for(request)
    nexset = get_object_or_404(
        Nexset,
        team=team,
        pk=request.GET.get("nexset") or request.POST.get("nexset") or 0,
    )
    form = DestinationCreateForm(
        request.POST or None,
        team=team,
        initial={"name": f"{nexset.name} to Gainsight PX"},
    )
    if request.method == "POST":
        require_editor(request)
        if form.is_valid():
            mode = form.cleaned_data["mode"]
            template = form.cleaned_data["template"] or "upsert_user"
            credential = form.cleaned_data["credential"]
            custom_types: dict[str, str] = {}
            if mode == "template":
                custom_types, problem = fetch_custom_types(
                    credential, TEMPLATES[template].object_type
                )
                if problem:
                    messages.warning(
                        request,
                        problem + " Custom attribute values are sent as they are.",
                    )
            destination = Destination.objects.create(
                team=team,
                name=form.cleaned_data["name"],
                nexset=nexset,
                credential=credential,
                mode=mode,
                template=template if mode == "template" else "",
                config=initial_config(
                    mode, template, nexset.attribute_names, custom_types
                ),
            )
            record_change(request, destination, "created", None, destination)
            return redirect("destinations:configure", pk=destination.pk)
    return render(
        request,
        "destinations/create.html",
        {
            "form": form,
            "nexset": nexset,
            "templates": TEMPLATES.values(),
            "has_credentials": team.credentials.exists(),
        },
    )


def _configure_context(
    request: HttpRequest,
    destination: Destination,
    name: str,
    mode: str,
    template: str,
    config: dict[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    batching = config.get("batching") or {}
    return {
        "base_template": FRAGMENT_BASE if request.htmx else "base.html",
        "destination": destination,
        "name": name,
        "can_edit": membership_for(request).can_edit,
        "mode": mode,
        "template": template,
        "template_info": TEMPLATES.get(template),
        "templates": TEMPLATES.values(),
        "config": config,
        "custom_types_json": json.dumps(config.get("custom_types") or {}),
        "batching": batching,
        "errors": errors,
        "attributes": destination.nexset.attribute_names,
        "rows": mapping_rows(template, config) if mode == "template" else [],
        "constant_source": CONSTANT_SOURCE,
        "content_formats": manual.CONTENT_FORMATS,
        "groupings": manual.GROUPINGS,
        "excluded": config.get("excluded", []),
        "panel": build_panel(destination, mode, template, config, errors),
        "history": destination.exchanges.filter(kind=Exchange.Kind.TEST)[
            :TEST_HISTORY_SHOWN
        ],
    }


@require_http_methods(["GET", "POST"])
def destination_configure(request: HttpRequest, pk: int) -> HttpResponse:
    """Show and save the configure form.

    A POST with action "save" saves when every field is valid. Actions "test"
    and "dry_run" come from the page without JavaScript, which has no HTMX
    requests to the test and dry run views. Other posts (switching mode or
    template, adding or removing an exclusion, turning batching on) re-render
    the form with what was typed and save nothing, so viewers may make them.
    """
    destination = get_for_team(request, Destination, pk=pk)
    if request.method == "GET":
        context = _configure_context(
            request,
            destination,
            destination.name,
            destination.mode,
            destination.template or "upsert_user",
            destination.config,
            {},
        )
        return render(request, "destinations/configure.html", context)
    action = request.POST.get("action", "")
    if action == "test":
        return destination_test(request, pk)
    if action == "dry_run":
        return destination_dry_run(request, pk)
    if action == "save":
        require_editor(request)
    mode, template, config, errors = parse_config(destination, request.POST)
    name = request.POST.get("name", "").strip()
    max_length = Destination._meta.get_field("name").max_length
    if not name:
        errors["name"] = "The name is empty: enter a name for the destination."
    elif len(name) > max_length:
        errors["name"] = (
            f"The name has {len(name)} characters: shorten it to {max_length} or fewer."
        )
    if action == "save" and not errors:
        return _save(request, destination, name, mode, template, config)
    if action == "save":
        messages.error(request, "Nothing was saved: correct the fields marked below.")
    extra: dict[str, Any] = {}
    if action in RESET_ACTIONS:
        config, extra["custom_types_problem"] = _reset_config(
            destination, action, mode, template, config
        )
        errors = {
            key: message
            for key, message in errors.items()
            if key in ("mode", "template", "name")
        }
    elif action == "refresh_custom_types" and mode == "template":
        config["custom_types"], extra["custom_types_problem"] = fetch_custom_types(
            destination.credential, TEMPLATES[template].object_type
        )
    context = _configure_context(
        request, destination, name, mode, template, config, errors
    )
    context.update(extra)
    return render(request, "destinations/configure.html", context)


def _reset_config(
    destination: Destination,
    action: str,
    mode: str,
    template: str,
    config: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Return the defaults for a newly chosen mode or template, and a fetch problem.

    Switching the template replaces the mapping with the new template's
    defaults and fetches its custom attribute types. Switching the mode
    starts that mode's settings afresh. Both keep the other settings.
    """
    custom_types: dict[str, str] = {}
    problem = ""
    if mode == "template":
        custom_types, problem = fetch_custom_types(
            destination.credential, TEMPLATES[template].object_type
        )
    fresh = initial_config(
        mode, template, destination.nexset.attribute_names, custom_types
    )
    if action == "change_template":
        config["custom_types"] = fresh["custom_types"]
        config["mapping"] = fresh["mapping"]
        return config, problem
    fresh.update(
        {
            key: value
            for key, value in config.items()
            if key in ("response_webhook", "skip_unchanged")
        }
    )
    return fresh, problem


def _save(
    request: HttpRequest,
    destination: Destination,
    name: str,
    mode: str,
    template: str,
    config: dict[str, Any],
) -> HttpResponse:
    before = snapshot(destination)
    destination.name = name
    destination.mode = mode
    destination.template = template if mode == "template" else ""
    destination.config = config
    destination.save()
    record_change(request, destination, "configured", before, destination)
    applies = (
        " The change applies from the next request."
        if destination.status == Destination.Status.ACTIVE
        else ""
    )
    messages.success(request, f"Saved {destination.name}.{applies}")
    return redirect(destination)


@require_POST
def destination_preview(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_for_team(request, Destination, pk=pk)
    mode, template, config, errors = parse_config(destination, request.POST)
    panel = build_panel(destination, mode, template, config, errors)
    return render(
        request, "destinations/panel.html", {"panel": panel, "destination": destination}
    )


def _result_page(
    request: HttpRequest, destination: Destination, result: dict[str, Any]
) -> HttpResponse:
    """Render the configure page around a test or dry run result, without JavaScript.

    The form keeps what was posted, so the user can go on editing.
    """
    mode, template, config, errors = parse_config(destination, request.POST)
    name = request.POST.get("name", "").strip()
    context = _configure_context(
        request, destination, name, mode, template, config, errors
    )
    context.update(result)
    return render(request, "destinations/configure.html", context)


@require_POST
def destination_test(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    destination = get_for_team(request, Destination, pk=pk)
    mode, template, config, errors = parse_config(destination, request.POST)
    result: dict[str, Any] = {"test_done": True}
    if errors:
        result["test_error"] = (
            "Nothing was sent: correct the settings first. " + " ".join(errors.values())
        )
    else:
        try:
            result["test_exchanges"] = send_test(
                destination, mode, template, config, request.POST.get("sample", "")
            )
        except SampleError as exc:
            result["test_error"] = f"Nothing was sent. {exc}"
    if not request.htmx:
        return _result_page(request, destination, result)
    return render(
        request, "destinations/test_result.html", {"destination": destination, **result}
    )


@require_POST
def destination_dry_run(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    destination = get_for_team(request, Destination, pk=pk)
    mode, template, config, errors = parse_config(destination, request.POST)
    if errors:
        result = DryRun(
            error="Nothing was checked: correct the settings first. "
            + " ".join(errors.values())
        )
    else:
        result = dry_run(destination, mode, template, config)
    if not request.htmx:
        return _result_page(request, destination, {"dry_run_result": result})
    return render(request, "destinations/dry_run.html", {"dry_run_result": result})


@require_GET
def destination_detail(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_for_team(request, Destination, pk=pk)
    return render(
        request,
        "destinations/detail.html",
        {
            **_runs_context(destination),
            "can_edit": membership_for(request).can_edit,
            "exchanges": destination.exchanges.all()[:10],
            "audit": destination.audit.all()[:20],
        },
    )


def _runs_context(destination: Destination) -> dict[str, Any]:
    runs_list = list(destination.runs.all()[:20])
    current = runs_list[0] if runs_list else None
    failures = []
    if current is not None:
        failures = list(
            current.results.filter(status=RecordResult.Status.FAILED).select_related(
                "record"
            )[:FAILURES_SHOWN]
        )
    return {
        "destination": destination,
        "runs": runs_list,
        "current": current,
        "failures": failures,
        "polling": any(run.is_active for run in runs_list),
        "chart": throughput_chart(current) if current else None,
    }


def throughput_chart(run: Run) -> dict[str, Any] | None:
    """Records finished per second over the run, as SVG polyline points."""
    rows = list(
        run.results.exclude(finished_at=None)
        .annotate(second=TruncSecond("finished_at"))
        .values("second")
        .annotate(n=Count("id"))
        .order_by("second")
    )
    if len(rows) < 2:
        return None
    start = rows[0]["second"]
    series = [((row["second"] - start).total_seconds(), row["n"]) for row in rows]
    span = max(series[-1][0], 1)
    peak = max(n for _, n in series)
    points = " ".join(
        f"{600 * t / span:.1f},{130 - 120 * n / peak:.1f}" for t, n in series
    )
    return {"points": points, "peak": peak, "span": round(span)}


@require_GET
def destination_runs(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_for_team(request, Destination, pk=pk)
    context = _runs_context(destination)
    context["can_edit"] = membership_for(request).can_edit
    return render(request, "destinations/runs.html", context)


@require_GET
def run_detail(request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
    destination = get_for_team(request, Destination, pk=pk)
    run = get_object_or_404(Run, destination=destination, pk=run_pk)
    failures = run.results.filter(status=RecordResult.Status.FAILED).select_related(
        "record"
    )[:500]
    return render(
        request,
        "destinations/run.html",
        {"destination": destination, "run": run, "failures": failures},
    )


@require_POST
def destination_activate(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    destination = get_for_team(request, Destination, pk=pk)
    before = snapshot(destination)
    resumed = list(
        destination.runs.filter(status=Run.Status.PAUSED).values_list("pk", flat=True)
    )
    run = runs.activate(destination)
    record_change(request, destination, "activated", before, destination)
    parts = []
    if resumed:
        parts.append(f"resumed run{pluralize(resumed)} {', '.join(map(str, resumed))}")
    if run:
        parts.append(f"run {run.pk} sends {run.total} new record{pluralize(run.total)}")
    if parts:
        messages.success(request, "Activated: " + "; ".join(parts) + ".")
    else:
        messages.success(
            request,
            "Activated: no new records to send; new records will be sent as they arrive.",
        )
    return redirect(destination)


@require_POST
def destination_pause(request: HttpRequest, pk: int) -> HttpResponse:
    # Viewers may pause: stopping delivery is always safe.
    destination = get_for_team(request, Destination, pk=pk)
    before = snapshot(destination)
    runs.pause(destination)
    record_change(request, destination, "paused", before, destination)
    messages.success(
        request, "Paused: workers stop after the requests already in flight."
    )
    return redirect(destination)


@require_POST
def destination_retry_failed(request: HttpRequest, pk: int) -> HttpResponse:
    require_editor(request)
    destination = get_for_team(request, Destination, pk=pk)
    run = runs.retry_failed(destination)
    if run is None:
        messages.info(request, "No failed records to retry.")
    elif destination.status == Destination.Status.ACTIVE:
        messages.success(request, f"Run {run.pk} retries {run.total} failed records.")
    else:
        messages.success(
            request,
            f"Run {run.pk} will retry {run.total} failed records when the destination is activated.",
        )
    return redirect(destination)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def destination_failures_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    destination = get_for_team(request, Destination, pk=pk)
    failed_ids = set(runs.latest_failed_record_ids(destination))
    results = (
        RecordResult.objects.filter(
            run__destination=destination,
            status=RecordResult.Status.FAILED,
            record_id__in=failed_ids,
        )
        .select_related("record")
        .order_by("record__position", "-run_id")
    )
    writer = csv.writer(_Echo())

    def rows() -> Any:
        yield writer.writerow(
            ["position", "run", "error", "response_status", "request_body", "record"]
        )
        seen = set()
        for result in results.iterator(chunk_size=1000):
            if result.record_id in seen:
                continue
            seen.add(result.record_id)
            body = (result.request or {}).get("body", "")
            yield writer.writerow(
                [
                    result.record.position,
                    result.run_id,
                    result.error,
                    result.response_status or "",
                    body,
                    _json(result.record.data),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="destination-{destination.pk}-failures.csv"'
    )
    return response


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@require_http_methods(["GET", "POST"])
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a paused or draft destination with its runs and results."""
    destination = get_for_team(request, Destination, pk=pk)
    active = destination.status == Destination.Status.ACTIVE
    return confirm_delete(
        request,
        destination,
        kind="destination",
        blockers=[destination] if active else [],
        blocked_reason="The destination is active: pause it first, so that no worker is sending its records.",
        consequence="Its runs, record outcomes and test history are deleted too. Its Nexset and credential stay.",
        back_url=destination.get_absolute_url(),
        done_message=f"Deleted destination {destination.name} with its runs.",
        done_url=reverse("destinations:list"),
    )
