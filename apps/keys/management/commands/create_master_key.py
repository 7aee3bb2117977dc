from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from apps.keys.models import ApiKey
from apps.keys.services import key_create


class Command(BaseCommand):
    help = "Create a master key (for operators who lost theirs). Prints the key once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="Operator master key")

    def handle(self, *args: object, **options: object) -> None:
        minted = key_create(key_type=ApiKey.Type.MASTER, name=str(options["name"]))
        self.stderr.write(f"Created master key {minted.key.id}. Save it now; it cannot be shown again.")
        self.stdout.write(minted.plaintext)
