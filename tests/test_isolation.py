"""Team isolation, roles and login for every URL pattern of the project.

ROUTES lists every named pattern outside the admin with the methods its view
accepts and the objects its URL names. test_every_url_pattern_is_listed walks
the resolver, so a new URL fails the suite until it is added here, and the
tests below then check it for another team's users, anonymous users and
viewers. Admin patterns are checked as a group: only staff may use them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from credentials.models import Credential
from destinations import runs
from destinations.models import Destination, Run
from nexsets import ingest
from nexsets.models import Nexset
from teams.models import Membership, Team
from tests.conftest import USERS_CSV, make_user, template_destination
from tests.services import SANDBOX_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    # Each test creates several users, and the default PBKDF2 hasher is slow by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass(frozen=True)
class Route:
    """What the test needs to know about one URL pattern."""

    methods: tuple[str, ...]
    # URL keyword argument -> kind of object it names ("nexset", "run", ...).
    objects: dict[str, str] = field(default_factory=dict)
    # Query parameters naming objects, such as ?nexset= on destination create.
    query: dict[str, str] = field(default_factory=dict)
    # Login is not required: the login page and the token-authenticated webhook.
    public: bool = False
    # A viewer may send POST requests: pausing is always safe, the sample
    # panel only renders, and logging out or in concerns the viewer alone.
    viewer_may_post: bool = False
    # Form fields that make a POST change something, for views whose other
    # POSTs only re-render a form.
    edit_data: dict[str, str] = field(default_factory=dict)


GET, POST, BOTH = ("GET",), ("POST",), ("GET", "POST")

ROUTES: dict[str, Route] = {
    "home": Route(GET),
    "login": Route(BOTH, public=True, viewer_may_post=True),
    "logout": Route(POST, viewer_may_post=True),
    "nexsets:list": Route(GET),
    "nexsets:create": Route(BOTH),
    "nexsets:detail": Route(GET, {"pk": "nexset"}),
    "nexsets:append": Route(POST, {"pk": "nexset"}),
    "nexsets:webhook_token": Route(POST, {"pk": "nexset"}),
    "nexsets:records": Route(GET, {"pk": "nexset"}),
    "nexsets:create_webhook": Route(POST),
    "nexsets:delete": Route(BOTH, {"pk": "nexset"}),
    "nexset_webhook": Route(POST, {"pk": "nexset"}, public=True, viewer_may_post=True),
    "credentials:list": Route(GET),
    "credentials:create": Route(BOTH),
    "credentials:detail": Route(GET, {"pk": "credential"}),
    "credentials:test": Route(POST, {"pk": "credential"}),
    "credentials:edit": Route(BOTH, {"pk": "credential"}),
    "credentials:delete": Route(BOTH, {"pk": "credential"}),
    "destinations:list": Route(GET),
    "destinations:create": Route(BOTH, query={"nexset": "nexset"}),
    "destinations:detail": Route(GET, {"pk": "destination"}),
    "destinations:configure": Route(BOTH, {"pk": "destination"}, edit_data={"action": "save"}),
    "destinations:preview": Route(POST, {"pk": "destination"}, viewer_may_post=True),
    "destinations:test": Route(POST, {"pk": "destination"}),
    "destinations:dry_run": Route(POST, {"pk": "destination"}),
    "destinations:activate": Route(POST, {"pk": "destination"}),
    "destinations:pause": Route(POST, {"pk": "destination"}, viewer_may_post=True),
    "destinations:retry_failed": Route(POST, {"pk": "destination"}),
    "destinations:runs": Route(GET, {"pk": "destination"}),
    "destinations:failures_csv": Route(GET, {"pk": "destination"}),
    "destinations:run": Route(GET, {"pk": "destination", "run_pk": "run"}),
    "destinations:delete": Route(BOTH, {"pk": "destination"}),
}

OBJECT_ROUTES = sorted(name for name, route in ROUTES.items() if route.objects or route.query)
PRIVATE_ROUTES = sorted(name for name, route in ROUTES.items() if not route.public)
EDITING_POSTS = sorted(
    name for name, route in ROUTES.items() if "POST" in route.methods and not route.viewer_may_post
)


# --- Walking the resolver -------------------------------------------------------------


@dataclass
class Pattern:
    name: str | None
    namespace: str
    # The patterns from the root to this one, to build an example URL.
    chain: list[URLPattern | URLResolver]
    callback: Any

    @property
    def qualified_name(self) -> str | None:
        if self.name is None:
            return None
        return f"{self.namespace}:{self.name}" if self.namespace else self.name

    @property
    def route(self) -> str:
        return "".join(str(item.pattern) for item in self.chain)


def walk(
    patterns: list[Any], namespace: str = "", chain: list[Any] | None = None
) -> Iterator[Pattern]:
    chain = chain or []
    for item in patterns:
        if isinstance(item, URLResolver):
            inner = namespace
            if item.namespace:
                inner = f"{namespace}:{item.namespace}" if namespace else item.namespace
            yield from walk(item.url_patterns, inner, [*chain, item])
        else:
            yield Pattern(item.name, namespace, [*chain, item], item.callback)


def all_patterns() -> list[Pattern]:
    return list(walk(get_resolver().url_patterns))


def is_admin(pattern: Pattern) -> bool:
    return pattern.namespace == "admin" or pattern.namespace.startswith("admin:")


# Values for the URL arguments of admin patterns. A URL built from them is
# checked to resolve to the same view, so a wrong value fails loudly.
ADMIN_SAMPLE_VALUES = {
    "app_label": "auth",
    "object_id": "1",
    "id": "1",
    "content_type_id": "1",
    "url": "no-such-page/",
}


def _fill_regex(regex: str, values: dict[str, str]) -> str:
    """Replace each named group of a URL regex with a sample value."""
    text = regex.lstrip("^").rstrip("$").replace("\\Z", "")
    out = []
    i = 0
    while i < len(text):
        match = re.match(r"\(\?P<(\w+)>", text[i:])
        if match is None:
            out.append(text[i])
            i += 1
            continue
        depth = 0
        j = i
        while j < len(text):
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(values[match.group(1)])
        i = j + 1
    return "".join(out)


def example_url(pattern: Pattern, values: dict[str, str]) -> str:
    parts = []
    for item in pattern.chain:
        text = str(item.pattern)
        if hasattr(item.pattern, "_route"):
            text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], text)
        else:
            text = _fill_regex(text, values)
        parts.append(text)
    return "/" + "".join(parts)


# --- Fixtures ------------------------------------------------------------------------


@dataclass
class TeamWorld:
    team: Team
    owner: Any
    viewer: Any
    credential: Credential
    nexset: Nexset
    destination: Destination
    run: Run

    def object_ids(self) -> dict[str, int]:
        return {
            "nexset": self.nexset.pk,
            "credential": self.credential.pk,
            "destination": self.destination.pk,
            "run": self.run.pk,
        }


def build_team(name: str, prefix: str, capture: Any) -> TeamWorld:
    team = Team.objects.create(name=name)
    owner = make_user(team, f"{prefix}-owner")
    viewer = make_user(team, f"{prefix}-viewer", Membership.Role.VIEWER)
    credential = Credential(team=team, name=f"{name} key", region=Credential.Region.SANDBOX)
    credential.set_api_key(SANDBOX_KEY)
    credential.save()
    nexset = ingest.create_from_upload(team, f"{name} users", io.BytesIO(USERS_CSV.encode()), "users.csv")
    nexset.new_webhook_token()
    nexset.save()
    destination = template_destination(
        nexset, credential, name=f"{name} to PX", status=Destination.Status.ACTIVE
    )
    with capture(execute=False):
        run = runs.create_run(destination)
    assert run is not None
    return TeamWorld(team, owner, viewer, credential, nexset, destination, run)


@pytest.fixture
def home_team(db: None, django_capture_on_commit_callbacks: Any) -> TeamWorld:
    return build_team("Home", "home", django_capture_on_commit_callbacks)


@pytest.fixture
def other_team(db: None, django_capture_on_commit_callbacks: Any) -> TeamWorld:
    return build_team("Other", "other", django_capture_on_commit_callbacks)


def url_for(name: str, world: TeamWorld) -> str:
    route = ROUTES[name]
    ids = world.object_ids()
    url = reverse(name, kwargs={arg: ids[kind] for arg, kind in route.objects.items()})
    if route.query:
        url += "?" + "&".join(f"{param}={ids[kind]}" for param, kind in route.query.items())
    return url


def post_data(name: str, world: TeamWorld) -> dict[str, Any]:
    """A POST body that names the world's objects where the view reads them."""
    ids = world.object_ids()
    data: dict[str, Any] = {param: ids[kind] for param, kind in ROUTES[name].query.items()}
    data.update(ROUTES[name].edit_data)
    return data


def state_of(world: TeamWorld) -> dict[str, Any]:
    """The fields that a request from outside the team must not change."""
    destination = Destination.objects.get(pk=world.destination.pk)
    nexset = Nexset.objects.get(pk=world.nexset.pk)
    credential = Credential.objects.get(pk=world.credential.pk)
    return {
        "destination": (destination.name, destination.status, destination.config, destination.cursor),
        "nexset": (nexset.name, nexset.record_count, nexset.webhook_token_hash),
        "credential": (credential.name, credential.status, credential.tested_at, credential.encrypted_key),
        "runs": list(Run.objects.filter(destination=destination).values_list("pk", "status")),
        "audit": destination.audit.count(),
        "exchanges": destination.exchanges.count(),
    }


def send_request(client: Client, method: str, name: str, world: TeamWorld) -> Any:
    """Send a GET, or a POST with the body post_data builds, to the route's URL."""
    url = url_for(name, world)
    if method == "GET":
        return client.get(url)
    return client.post(url, post_data(name, world))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Coverage of the URL patterns --------------------------------------------------------


def test_every_url_pattern_is_listed():
    project = [pattern for pattern in all_patterns() if not is_admin(pattern)]
    unnamed = [pattern.route for pattern in project if pattern.name is None]
    assert unnamed == [], "give these URL patterns a name and add them to ROUTES"
    found = {pattern.qualified_name for pattern in project}
    missing = sorted(found - set(ROUTES))
    assert missing == [], "add these URL patterns to ROUTES in tests/test_isolation.py"
    stale = sorted(set(ROUTES) - found)
    assert stale == [], "remove these names from ROUTES: no URL pattern has them"


def test_object_routes_name_every_url_argument():
    for pattern in all_patterns():
        if is_admin(pattern):
            continue
        arguments = set(pattern.chain[-1].pattern.regex.groupindex)
        for item in pattern.chain[:-1]:
            arguments |= set(item.pattern.regex.groupindex)
        listed = set(ROUTES[pattern.qualified_name].objects)
        assert arguments == listed, f"{pattern.qualified_name}: URL arguments {arguments}, ROUTES lists {listed}"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_methods_match_view(name, home_team):
    """A method that ROUTES does not list is rejected with 405 for a team member."""
    route = ROUTES[name]
    client = client_for(home_team.owner)
    url = url_for(name, home_team)
    for method in ("GET", "POST"):
        if method in route.methods:
            continue
        response = client.generic(method, url)
        assert response.status_code == 405, f"{method} {url} answered {response.status_code}"


# --- Other teams --------------------------------------------------------------------------


@pytest.mark.parametrize("name", OBJECT_ROUTES)
def test_other_team_owner_gets_404(name, home_team, other_team):
    before = state_of(home_team)
    client = client_for(other_team.owner)
    url = url_for(name, home_team)
    for method in ROUTES[name].methods:
        response = send_request(client, method, name, home_team)
        assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
    assert state_of(home_team) == before


@pytest.mark.parametrize("name", OBJECT_ROUTES)
def test_other_team_viewer_gets_no_access(name, home_team, other_team):
    # NOTE: views that call require_editor before the object lookup return 403
    # to any viewer, whatever the id names, so the status reveals nothing.
    before = state_of(home_team)
    client = client_for(other_team.viewer)
    url = url_for(name, home_team)
    for method in ROUTES[name].methods:
        response = send_request(client, method, name, home_team)
        assert response.status_code in (403, 404), f"{method} {url} answered {response.status_code}"
    assert state_of(home_team) == before


def test_foreign_run_under_own_destination(home_team, other_team):
    client = client_for(home_team.owner)
    url = reverse("destinations:run", args=[home_team.destination.pk, other_team.run.pk])
    assert client.get(url).status_code == 404


def test_run_of_sibling_destination(home_team, django_capture_on_commit_callbacks):
    second = template_destination(
        home_team.nexset,
        home_team.credential,
        name="Second",
        status=Destination.Status.ACTIVE,
    )
    with django_capture_on_commit_callbacks(execute=False):
        second_run = runs.create_run(second)
    client = client_for(home_team.owner)
    url = reverse("destinations:run", args=[home_team.destination.pk, second_run.pk])
    assert client.get(url).status_code == 404


def test_destination_create_rejects_other_team_credential(home_team, other_team):
    client = client_for(other_team.owner)
    response = client.post(
        reverse("destinations:create"),
        {
            "nexset": other_team.nexset.pk,
            "name": "Stolen key",
            "credential": home_team.credential.pk,
            "mode": "template",
            "template": "upsert_user",
        },
    )
    assert response.status_code == 200
    assert "credential" in response.context["form"].errors
    assert not Destination.objects.filter(name="Stolen key").exists()


def test_lists_show_only_own_team(home_team, other_team):
    client = client_for(other_team.owner)
    for name in ("home", "nexsets:list", "credentials:list", "destinations:list"):
        page = client.get(reverse(name)).content.decode()
        for foreign in (home_team.nexset.name, home_team.credential.name, home_team.destination.name):
            assert foreign not in page, f"{name} shows {foreign!r} of another team"


def test_user_without_team_gets_404(home_team):
    loner = get_user_model().objects.create_user(username="loner", password="correct-horse-battery")
    client = client_for(loner)
    assert client.get(reverse("home")).status_code == 404
    assert client.get(url_for("destinations:detail", home_team)).status_code == 404


def test_webhook_token_of_other_nexset_is_rejected(home_team, other_team):
    token = other_team.nexset.new_webhook_token()
    other_team.nexset.save()
    url = reverse("nexset_webhook", args=[home_team.nexset.pk])
    response = Client().post(url, b'{"a": 1}', content_type="application/json", HTTP_X_NEXSET_TOKEN=token)
    assert response.status_code == 404
    assert Nexset.objects.get(pk=home_team.nexset.pk).record_count == 2


def test_webhook_with_own_token_is_accepted(home_team):
    token = home_team.nexset.new_webhook_token()
    home_team.nexset.save()
    url = reverse("nexset_webhook", args=[home_team.nexset.pk])
    response = Client().post(url, b'{"a": 1}', content_type="application/json", HTTP_X_NEXSET_TOKEN=token)
    assert response.status_code == 202


# --- Anonymous users --------------------------------------------------------------------


@pytest.mark.parametrize("name", PRIVATE_ROUTES)
def test_anonymous_is_redirected_to_login(name, home_team):
    before = state_of(home_team)
    client = Client()
    url = url_for(name, home_team)
    login = reverse("login")
    for method in ROUTES[name].methods:
        response = send_request(client, method, name, home_team)
        assert response.status_code == 302, f"{method} {url} answered {response.status_code}"
        assert response["Location"].startswith(login + "?next="), response["Location"]
    assert state_of(home_team) == before


def test_anonymous_webhook_without_token_is_404(home_team):
    url = reverse("nexset_webhook", args=[home_team.nexset.pk])
    response = Client().post(url, b'{"a": 1}', content_type="application/json")
    assert response.status_code == 404
    response = Client().post(url + "?token=wrong", b'{"a": 1}', content_type="application/json")
    assert response.status_code == 404


def test_login_page_is_public():
    assert Client().get(reverse("login")).status_code == 200


# --- Roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", EDITING_POSTS)
def test_viewer_cannot_post(name, home_team):
    before = state_of(home_team)
    client = client_for(home_team.viewer)
    response = client.post(url_for(name, home_team), post_data(name, home_team))
    assert response.status_code == 403
    assert state_of(home_team) == before


@pytest.mark.parametrize("name", sorted(n for n, r in ROUTES.items() if "GET" in r.methods and not r.public))
def test_viewer_can_look(name, home_team):
    client = client_for(home_team.viewer)
    response = client.get(url_for(name, home_team))
    assert response.status_code == 200


def test_viewer_can_pause(home_team):
    client = client_for(home_team.viewer)
    response = client.post(url_for("destinations:pause", home_team))
    assert response.status_code == 302
    home_team.destination.refresh_from_db()
    assert home_team.destination.status == Destination.Status.PAUSED


def test_viewer_can_render_sample_panel(home_team):
    client = client_for(home_team.viewer)
    response = client.post(url_for("destinations:preview", home_team), {"product_key": "AP-TEST-2"})
    assert response.status_code == 200


def test_member_can_edit(home_team):
    member = make_user(home_team.team, "home-member", Membership.Role.MEMBER)
    client = client_for(member)
    response = client.post(url_for("destinations:dry_run", home_team), {"product_key": "AP-TEST-2"})
    assert response.status_code == 200


# --- Admin --------------------------------------------------------------------------------


def admin_patterns() -> list[Pattern]:
    return [pattern for pattern in all_patterns() if is_admin(pattern)]


def test_admin_urls_require_staff(home_team):
    # LoginRequiredMiddleware sends anonymous users to the main login page,
    # and the admin sends logged-in users who are not staff to its own.
    login_urls = (reverse("login"), reverse("admin:login"))
    anonymous = Client()
    member = client_for(home_team.owner)
    checked = 0
    for pattern in admin_patterns():
        if pattern.qualified_name in ("admin:login", "admin:logout"):
            continue
        url = example_url(pattern, ADMIN_SAMPLE_VALUES)
        assert resolve(url).func == pattern.callback, f"{url} does not resolve to {pattern.route}"
        for client in (anonymous, member):
            response = client.get(url)
            assert response.status_code == 302, f"GET {url} answered {response.status_code}"
            assert response["Location"].startswith(login_urls), f"GET {url} went to {response['Location']}"
        checked += 1
    assert checked > 10


def test_admin_login_rejects_team_owner(home_team):
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": home_team.owner.username, "password": "correct-horse-battery"},
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
