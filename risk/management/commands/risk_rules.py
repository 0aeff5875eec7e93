"""Rule sets as data: list, export, import (as a draft), activate, run in shadow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from risk.engine import DEFAULT_RULESET, ruleset_from_dict
from risk.models import RuleSetVersion
from risk.rulesets import ruleset_activate, ruleset_import, ruleset_shadow


class Command(BaseCommand):
    help = "Manage risk rule set versions: list | export | import FILE | activate VERSION | shadow VERSION|--clear"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        e = sub.add_parser("export")
        e.add_argument("--version", default="", help="default: the active version (else the shipped default)")
        e.add_argument("--out", type=Path)
        i = sub.add_parser("import")
        i.add_argument("file", type=Path)
        i.add_argument("--notes", default="")
        a = sub.add_parser("activate")
        a.add_argument("version")
        s = sub.add_parser("shadow")
        s.add_argument("version", nargs="?", default="")
        s.add_argument("--clear", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        action = o["action"]
        try:
            if action == "list":
                for row in RuleSetVersion.objects.order_by("created_at"):
                    self.stdout.write(
                        f"{row.version:24} {row.status:8} {len(row.rules.get('rules', []))} rules  {row.notes}"
                    )
                if not RuleSetVersion.objects.filter(status=RuleSetVersion.Status.ACTIVE).exists():
                    self.stdout.write(f"(no active version: the shipped {DEFAULT_RULESET.version} decides)")
            elif action == "export":
                data = self._export(o["version"])
                text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
                if o["out"]:
                    o["out"].write_text(text, encoding="utf-8")
                    self.stdout.write(f"wrote {data['version']} to {o['out']}")
                else:
                    self.stdout.write(text)
            elif action == "import":
                if not o["file"].is_file():
                    raise CommandError(f"{o['file']}: no such file")
                row = ruleset_import(data=json.loads(o["file"].read_text(encoding="utf-8")), notes=o["notes"])
                self.stdout.write(f"imported {row.version} as a draft")
            elif action == "activate":
                ruleset_activate(version=o["version"])
                self.stdout.write(f"{o['version']} is active")
            elif action == "shadow":
                if not o["clear"] and not o["version"]:
                    raise CommandError("give a version or --clear")
                ruleset_shadow(version="" if o["clear"] else o["version"])
                self.stdout.write("shadow cleared" if o["clear"] else f"{o['version']} runs in shadow")
        except (ValueError, KeyError, RuleSetVersion.DoesNotExist) as exc:
            raise CommandError(str(exc))

    def _export(self, version: str) -> dict:
        if version:
            return RuleSetVersion.objects.get(version=version).rules
        active = RuleSetVersion.objects.filter(status=RuleSetVersion.Status.ACTIVE).first()
        return active.rules if active else ruleset_from_dict(DEFAULT_RULESET.to_dict()).to_dict()
