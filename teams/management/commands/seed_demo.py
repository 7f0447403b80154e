from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from credentials.models import Credential
from teams.models import Membership, Team


class Command(BaseCommand):
    help = "Create a demo login with its team and, when a sandbox is set, a Sandbox credential."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--sandbox-key", default="", help="API key the sandbox accepts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=options["username"])
        user.set_password(options["password"])
        user.save()
        if created or not Membership.objects.filter(user=user).exists():
            team = Team.objects.create(name=f"{user.username}'s team")
            Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
        team = user.membership.team
        if options["sandbox_key"]:
            if not settings.PX_SANDBOX_URL:
                raise CommandError("--sandbox-key needs PX_SANDBOX_URL to be set")
            credential = Credential.objects.filter(
                team=team, name="Sandbox"
            ).first() or Credential(
                team=team, name="Sandbox", region=Credential.Region.SANDBOX
            )
            credential.set_api_key(options["sandbox_key"])
            credential.save()
        self.stdout.write(f"Demo login {user.username} ready in team {team.name}")
