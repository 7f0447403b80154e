"""Benchmark 5: the sample panel on a 1,000,000-record Nexset and a 100-record one.

Times destinations.preview.build_panel, which builds the requests for the
first records of the Nexset, and a GET of the destination's configure page,
which renders the panel with the rest of the form. The large Nexset is kept
between runs in its own database (``pxsync_bench_panel``), because writing
1,000,000 records takes longer than the measurement. ``--rebuild`` writes it
again.

Target: median time on the large Nexset <= 2x the median on the small one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench import harness

NAME = "panel"
DATABASE = "pxsync_bench_panel"
LARGE_NAME = "Panel benchmark, large"
SMALL_NAME = "Panel benchmark, small"


def time_alternating(
    calls: dict[str, Callable[[], object]], repeat: int, warmup: int = 3
) -> dict[str, dict[str, float]]:
    """Time each call ``repeat`` times, taking turns so that load on the machine hits all alike.

    Returns the median and 90th percentile of each, in milliseconds.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    timings: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(repeat):
        for label, call in calls.items():
            started = time.perf_counter()
            call()
            timings[label].append((time.perf_counter() - started) * 1000)
    summary = {}
    for label, values in timings.items():
        values.sort()
        summary[label] = {
            "median_ms": round(statistics.median(values), 2),
            "p90_ms": round(values[int(len(values) * 0.9) - 1], 2),
        }
    return summary


def ensure_fixtures(large: int, small: int, rebuild: bool) -> tuple[object, object]:
    """Return the large and small Nexsets, writing them when missing or resized."""
    from django.db import connection

    from nexsets.models import Nexset
    from teams.models import Team

    existing = {
        n.name: n for n in Nexset.objects.filter(name__in=[LARGE_NAME, SMALL_NAME])
    }
    sizes_match = (
        existing.get(LARGE_NAME) is not None
        and existing[LARGE_NAME].record_count == large
        and existing.get(SMALL_NAME) is not None
        and existing[SMALL_NAME].record_count == small
    )
    if sizes_match and not rebuild:
        return existing[LARGE_NAME], existing[SMALL_NAME]

    harness.empty_tables()
    team = Team.objects.create(name="Panel benchmark")
    started = time.perf_counter()
    large_nexset = harness.create_event_nexset(team, large, name=LARGE_NAME)
    print(f"wrote {large} records in {time.perf_counter() - started:.0f} s", flush=True)
    small_nexset = harness.create_event_nexset(team, small, name=SMALL_NAME)
    # Autovacuum would analyze the table soon after such an insert; doing it
    # here keeps the query plans from depending on when that happens.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE nexsets_record")
    return large_nexset, small_nexset


def query_plan(nexset_id: int) -> str:
    """Return the first line of PostgreSQL's plan for the panel's record query.

    The query is the one destinations.preview runs for a destination without
    batching: the first records of the Nexset by position.
    """
    from nexsets.models import Record

    queryset = (
        Record.objects.filter(nexset_id=nexset_id)
        .order_by("position")
        .values_list("position", "data")[:5]
    )
    return " / ".join(line.strip() for line in queryset.explain().splitlines())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench panel", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--large",
        type=int,
        default=1_000_000,
        help="records in the large Nexset (default 1000000)",
    )
    parser.add_argument(
        "--small",
        type=int,
        default=100,
        help="records in the small Nexset (default 100)",
    )
    parser.add_argument(
        "--repeat", type=int, default=200, help="timed calls per case (default 200)"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="write the Nexsets again even if they exist",
    )
    args = parser.parse_args(argv)

    with harness.Services(NAME) as services:
        env = harness.product_env(services, DATABASE, LOG_LEVEL="WARNING")
        harness.setup_django(env)
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.urls import reverse

        from destinations.models import Destination
        from destinations.preview import build_panel
        from teams.models import Membership

        large_nexset, small_nexset = ensure_fixtures(
            args.large, args.small, args.rebuild
        )
        team = large_nexset.team
        Destination.objects.filter(team=team).delete()
        credential = team.credentials.first() or harness.create_credential(
            team, rate_limit=200
        )
        user = get_user_model().objects.filter(username="panel-bench").first()
        if user is None:
            user = get_user_model().objects.create_user(
                username="panel-bench", password="panel-bench-password"
            )
            Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
        client = Client()
        client.force_login(user)

        calls = {}
        results = {}
        for label, nexset in (("large", large_nexset), ("small", small_nexset)):
            destination = harness.create_event_destination(nexset, credential)
            panel = build_panel(
                destination, "template", "track_event", destination.config
            )
            if panel.error or not panel.requests:
                raise RuntimeError(
                    f"the panel of the {label} Nexset is empty: {panel.error!r}"
                )
            url = reverse("destinations:configure", args=[destination.pk])

            def get_page(url: str = url) -> None:
                # secure: with DEBUG=false the settings redirect plain HTTP to HTTPS.
                response = client.get(url, secure=True)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} returned {response.status_code}")

            calls[f"{label} build_panel"] = lambda d=destination: build_panel(
                d, "template", "track_event", d.config
            )
            calls[f"{label} configure_page"] = get_page
            results[label] = {
                "records": nexset.record_count,
                "query_plan": query_plan(nexset.pk),
            }
        timings = time_alternating(calls, args.repeat)
        for label in results:
            results[label]["build_panel"] = timings[f"{label} build_panel"]
            results[label]["configure_page"] = timings[f"{label} configure_page"]

    figures = {
        "large": results["large"],
        "small": results["small"],
        "build_panel_large_vs_small": round(
            results["large"]["build_panel"]["median_ms"]
            / results["small"]["build_panel"]["median_ms"],
            3,
        ),
        "configure_page_large_vs_small": round(
            results["large"]["configure_page"]["median_ms"]
            / results["small"]["configure_page"]["median_ms"],
            3,
        ),
    }
    figures["targets_met"] = {
        "build_panel_large_vs_small<=2": figures["build_panel_large_vs_small"] <= 2,
        "configure_page_large_vs_small<=2": figures["configure_page_large_vs_small"]
        <= 2,
    }
    harness.save_result(NAME, figures)
    harness.print_figures(
        f"{NAME}: {args.large} vs {args.small} records", list(figures.items())
    )


if __name__ == "__main__":
    main()
