import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from risk.training import (
    gate_check,
    model_activate,
    model_train,
    training_set_from_events,
    training_set_from_labels,
)


class Command(BaseCommand):
    help = (
        "Train the fraud score from labelled outcomes (or --from-events/--labels), report precision/recall/FPR on "
        "a held-out split, store a candidate ModelVersion, and activate it with --activate if it passes the gate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-events", type=Path)
        parser.add_argument("--labels", type=Path)
        parser.add_argument("--model-version", default="", help="name of the new version (default lr-<timestamp>)")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--kind", choices=("trees", "lr"), default="trees", help="gradient-boosted trees or LR")

    def handle(self, *args: Any, **o: Any) -> None:
        if bool(o["from_events"]) != bool(o["labels"]):
            raise CommandError("--from-events and --labels go together")
        if o["from_events"]:
            for p in (o["from_events"], o["labels"]):
                if not p.is_file():
                    raise CommandError(f"{p}: no such file")
            data = training_set_from_events(o["from_events"], o["labels"])
        else:
            data = training_set_from_labels()
        prefix = "gbt" if o["kind"] == "trees" else "lr"
        version = o["model_version"] or f"{prefix}-{timezone.now():%Y%m%d%H%M%S}"
        try:
            row, problems = model_train(data=data, version=version, kind=o["kind"])
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"trained {row.version} on {data.source}")
        self.stdout.write("train: " + json.dumps(row.metrics["train"]))
        self.stdout.write("held out: " + json.dumps(row.metrics["held_out"]))
        if problems:
            self.stdout.write("gate: NOT passed: " + "; ".join(problems))
        else:
            self.stdout.write("gate: passed")
        if o["activate"]:
            if gate_check(row.metrics["held_out"]):
                raise CommandError(f"{row.version} stays a candidate: it does not pass the activation gate")
            model_activate(version=row.version)
            self.stdout.write(f"{row.version} is active")
