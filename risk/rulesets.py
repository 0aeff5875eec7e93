"""Rule set versions: import as a draft, activate, run in shadow. Every change is audited (simple-history)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .engine import ruleset_from_dict
from .engine.rules import BLOCK_THRESHOLD_REFUSED
from .models import RuleSetVersion
from .services import risk_engine_reset


def ruleset_import(*, data: dict[str, Any], notes: str = "") -> RuleSetVersion:
    """Validate a ``RuleSet.to_dict()`` document and store it as a draft (a version is never overwritten)."""
    if "block" in (data.get("thresholds") or {}):
        raise ValueError(BLOCK_THRESHOLD_REFUSED)  # loading old stored versions drops it; a new import says so
    ruleset = ruleset_from_dict(data)  # raises ValueError on a malformed rule
    if RuleSetVersion.objects.filter(version=ruleset.version).exists():
        raise ValueError(f"version {ruleset.version} exists; give the new rule set a new version")
    return RuleSetVersion.objects.create(version=ruleset.version, rules=ruleset.to_dict(), notes=notes)


def ruleset_activate(*, version: str) -> RuleSetVersion:
    with transaction.atomic():
        row = RuleSetVersion.objects.select_for_update().get(version=version)
        for old in RuleSetVersion.objects.filter(status=RuleSetVersion.Status.ACTIVE).exclude(pk=row.pk):
            old.status = RuleSetVersion.Status.RETIRED
            old.save(update_fields=["status", "updated_at"])
        row.status = RuleSetVersion.Status.ACTIVE
        row.save(update_fields=["status", "updated_at"])
    risk_engine_reset()
    return row


def ruleset_shadow(*, version: str) -> RuleSetVersion | None:
    """Run ``version`` in shadow beside the active set ('' clears the shadow)."""
    with transaction.atomic():
        for old in RuleSetVersion.objects.filter(status=RuleSetVersion.Status.SHADOW):
            old.status = RuleSetVersion.Status.DRAFT
            old.save(update_fields=["status", "updated_at"])
        row = None
        if version:
            row = RuleSetVersion.objects.select_for_update().get(version=version)
            if row.status == RuleSetVersion.Status.ACTIVE:
                raise ValueError("the active version cannot also be the shadow")
            row.status = RuleSetVersion.Status.SHADOW
            row.save(update_fields=["status", "updated_at"])
    risk_engine_reset()
    return row
