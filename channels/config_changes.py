"""A channel's protocol config (endpoint, ids, key references) changes only with two people: one proposes, a
different one approves, a service applies it. Secrets never sit in the config: key material is named by file
(``<name>_file``) or environment variable (``<name>_env``) and read by the adapter when it is built.

Who may do what: ``payment_channels.propose_channel_config`` to propose, ``payment_channels.approve_channel_config``
to approve or reject someone else's proposal (a proposer may withdraw their own). Operations' ``change_channel``
covers the operational fields only (pause, quotas, maintenance windows), never these.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import DomainError

from .adapters import build_adapter
from .base import ConfigError
from .models import Channel, ChannelConfigChange

# Key material an adapter reads with channels.adapters._common.material(): given inline it would be a secret
# in the database (and editable by whoever edits the row), so a config may only point at it.
SECRET_NAMES = frozenset(
    {"secret", "app_private_key", "alipay_public_key", "merchant_private_key", "platform_public_key", "apiv3_key"}
)
REDACTED = "•••（已隐藏）"


def channel_config_redacted(config: dict[str, Any]) -> dict[str, Any]:
    """The config as staff may see it: an inline secret (left from before references) is hidden."""
    return {k: (REDACTED if k in SECRET_NAMES and v else v) for k, v in (config or {}).items()}


def channel_config_validate(*, config: Any) -> dict[str, Any]:
    """A JSON object with no secret given inline."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError as exc:
            raise DomainError("invalid_request", details={"config": f"not JSON: {exc}"}) from None
    if not isinstance(config, dict):
        raise DomainError("invalid_request", details={"config": "must be a JSON object"})
    inline = sorted(k for k in config if k in SECRET_NAMES and config[k])
    if inline:
        raise DomainError(
            "invalid_request",
            details={
                "config": f"secrets may not be stored in the config: give {', '.join(inline)} as <name>_file "
                "(a path) or <name>_env (an environment variable)"
            },
        )
    return config


def _check_builds(channel: Channel, config: dict[str, Any]) -> None:
    """An approved config must build an adapter (the key files / variables exist and parse) before it replaces
    one that works."""
    if channel.adapter == Channel.Adapter.SANDBOX:
        return
    try:
        build_adapter(channel.adapter, channel.code, config)
    except ConfigError as exc:
        raise DomainError("invalid_request", details={"config": f"the adapter cannot be built: {exc}"}) from None


def channel_config_change_propose(*, channel_id: int, config: Any, reason: str, by: Any) -> ChannelConfigChange:
    if not by.has_perm("payment_channels.propose_channel_config"):
        raise DomainError("permission_denied")
    if not (reason or "").strip():
        raise DomainError("invalid_request", details={"reason": "say why the config changes"})
    config = channel_config_validate(config=config)
    try:
        with transaction.atomic():
            channel = Channel.objects.select_for_update(no_key=True).get(pk=channel_id)
            if config == channel.config:
                raise DomainError("invalid_request", details={"config": "no change"})
            return ChannelConfigChange.objects.create(
                channel=channel,
                proposed_config=config,
                base_config=channel.config,
                reason=reason.strip()[:255],
                proposed_by=by,
            )
    except Channel.DoesNotExist:
        raise DomainError("not_found") from None
    except IntegrityError:
        raise DomainError("invalid_state", details={"config": "this channel already has a pending change"}) from None


def _locked_pending(change_id: int) -> ChannelConfigChange:
    change = ChannelConfigChange.objects.select_for_update().filter(pk=change_id).first()
    if change is None:
        raise DomainError("not_found")
    if change.status != ChannelConfigChange.Status.PENDING:
        raise DomainError("invalid_state", details={"status": change.status})
    return change


def channel_config_change_approve(*, change_id: int, by: Any, note: str = "") -> ChannelConfigChange:
    """A second person approves: the proposed config replaces the channel's, in one transaction, with the
    approver in the channel's history. A change proposed against a config that has changed since is void."""
    if not by.has_perm("payment_channels.approve_channel_config"):
        raise DomainError("permission_denied")
    with transaction.atomic(durable=True):
        change = _locked_pending(change_id)
        if change.proposed_by_id == by.pk:
            raise DomainError("four_eyes_required")
        channel = Channel.objects.select_for_update(no_key=True).get(pk=change.channel_id)
        now = timezone.now()
        if channel.config != change.base_config:
            change.status, change.decided_by, change.decided_at = ChannelConfigChange.Status.SUPERSEDED, by, now
            change.decision_note = "the channel config changed after this proposal"
            change.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
            superseded = True
        else:
            superseded = False
            config = channel_config_validate(config=change.proposed_config)
            _check_builds(channel, config)
            channel.config = config
            channel._history_user = by  # type: ignore[attr-defined]
            channel._change_reason = f"config change #{change.pk}: {change.reason}"[:100]  # type: ignore[attr-defined]
            channel.save(update_fields=["config", "updated_at"])
            change.status, change.decided_by, change.decided_at = ChannelConfigChange.Status.APPLIED, by, now
            change.decision_note = note.strip()[:255]
            change.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    if superseded:
        raise DomainError("invalid_state", details={"config": "the channel config changed since; propose again"})
    return change


def channel_config_change_reject(*, change_id: int, by: Any, note: str = "") -> ChannelConfigChange:
    """An approver turns a proposal down, or its proposer withdraws it."""
    with transaction.atomic():
        change = _locked_pending(change_id)
        if change.proposed_by_id != by.pk and not by.has_perm("payment_channels.approve_channel_config"):
            raise DomainError("permission_denied")
        change.status, change.decided_by, change.decided_at = ChannelConfigChange.Status.REJECTED, by, timezone.now()
        change.decision_note = note.strip()[:255]
        change.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return change
