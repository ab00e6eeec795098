"""Build the name lexicon that spelled names are checked against (run by ``make setup``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.dialogue.names import lexicon_build, lexicon_path


class Command(BaseCommand):
    help = "Write the first-name and surname lexicon from the installed names-dataset package."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, default=None, help="default: $NAME_LEXICON_PATH or var/")
        parser.add_argument("--if-missing", action="store_true", help="do nothing when the lexicon exists")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"] or lexicon_path()
        if options["if_missing"] and out.is_file():
            return
        self.stdout.write(f"Building the name lexicon in {out} (reads about 1 GB of tables; ~20 s)...")
        started = time.monotonic()
        try:
            count = lexicon_build(out)
        except FileNotFoundError as exc:
            raise CommandError(f"{exc}: run make setup") from exc
        self.stdout.write(f"{count} names written in {time.monotonic() - started:.0f} s")
