"""Finding 2: operations staff could rewrite a channel's protocol config (and its secret) in the admin. Now the
config is read-only in the admin for everyone; an endpoint or key change is proposed by one user, applied only
when a different user approves it, with the proposal rows and the channel's history as the audit trail."""

from __future__ import annotations

import pytest

from channels.config_changes import (
    channel_config_change_approve,
    channel_config_change_propose,
    channel_config_change_reject,
    channel_config_validate,
)
from channels.models import Channel, ChannelConfigChange
from config.errors import DomainError
from tests.staff import staff_client, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

BASE = {"base_url": "https://bank.example/v1", "key_id": "k1", "secret_file": "/run/secrets/bankdirect", "timeout": 10}


@pytest.fixture
def bank_channel():
    return Channel.objects.create(
        code="bankx", name="Bank X", adapter=Channel.Adapter.SANDBOX, supported_account_kinds=["bank_card"], config=BASE
    )


def _change_form(channel: Channel, **overrides):
    data = {
        "name": channel.name,
        "enabled": "on",
        "paused_reason": "",
        "priority": channel.priority,
        "min_amount": channel.min_amount,
        "max_amount": "",
        "daily_amount_limit": "",
        "daily_count_limit": "",
        "maintenance_windows": "[]",
        "error_budget_bp": "",
        "config": '{"base_url": "https://evil.example", "key_id": "k1", "secret": "attacker-chosen"}',
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_ops_post_to_the_channel_page_cannot_change_config_but_can_pause(bank_channel):
    ops = staff_client(staff_user("ops1", "operations"))
    url = f"/admin/payment_channels/channel/{bank_channel.pk}/change/"
    page = ops.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="config"' not in html  # not a form field for anyone
    response = ops.post(url, _change_form(bank_channel, paused="on", paused_reason="bank maintenance"))
    assert response.status_code == 302, response.content.decode()[:2000]
    bank_channel.refresh_from_db()
    assert bank_channel.config == BASE  # the forged config was ignored
    assert bank_channel.paused and bank_channel.paused_reason == "bank maintenance"  # operational fields work


def test_ops_cannot_change_fees_or_adapter_or_propose(bank_channel):
    ops = staff_client(staff_user("ops1", "operations"))
    url = f"/admin/payment_channels/channel/{bank_channel.pk}/change/"
    ops.post(url, _change_form(bank_channel, fee_fixed="1", adapter="bankdirect", code="other"))
    bank_channel.refresh_from_db()
    assert (bank_channel.fee_fixed, bank_channel.adapter, bank_channel.code) == (0, "sandbox", "bankx")
    assert ops.get("/admin/payment_channels/channelconfigchange/add/").status_code == 403
    with pytest.raises(DomainError) as err:
        channel_config_change_propose(
            channel_id=bank_channel.pk, config={**BASE, "key_id": "k2"}, reason="x", by=staff_user("ops2", "operations")
        )
    assert err.value.code == "permission_denied"


def test_history_revert_cannot_bring_back_an_old_config(bank_channel):
    """simple-history's historical form view saves a POST for anyone who may view history: refused."""
    a, b = staff_user("chan_a", "channel_admin"), staff_user("chan_b", "channel_admin")
    old_version = bank_channel.history.order_by("history_id").first()
    change = channel_config_change_propose(
        channel_id=bank_channel.pk, config={**BASE, "key_id": "k2"}, reason="new key", by=a
    )
    channel_config_change_approve(change_id=change.pk, by=b)
    for user in (staff_user("ops1", "operations"), staff_user("root", None)):
        url = f"/admin/payment_channels/channel/{bank_channel.pk}/history/{old_version.history_id}/"
        response = staff_client(user).post(url, {"name": "x", "_change_history": "1"})
        assert response.status_code == 403
    bank_channel.refresh_from_db()
    assert bank_channel.config["key_id"] == "k2"


def test_a_proposal_is_applied_only_when_a_different_user_approves(bank_channel):
    alice, bob = staff_user("chan_alice", "channel_admin"), staff_user("chan_bob", "channel_admin")
    new = {**BASE, "base_url": "https://bank.example/v2", "secret_file": "/run/secrets/bankdirect-2026"}
    change = channel_config_change_propose(channel_id=bank_channel.pk, config=new, reason="key rotation", by=alice)
    bank_channel.refresh_from_db()
    assert bank_channel.config == BASE  # proposed, not applied

    with pytest.raises(DomainError) as err:
        channel_config_change_approve(change_id=change.pk, by=alice)
    assert err.value.code == "four_eyes_required"
    # ... also through the admin's approve button
    staff_client(alice).post(f"/admin/payment_channels/channelconfigchange/{change.pk}/approve/")
    bank_channel.refresh_from_db()
    assert bank_channel.config == BASE
    with pytest.raises(DomainError) as err:
        channel_config_change_approve(change_id=change.pk, by=staff_user("ops1", "operations"))
    assert err.value.code == "permission_denied"

    response = staff_client(bob).post(f"/admin/payment_channels/channelconfigchange/{change.pk}/approve/")
    assert response.status_code == 302
    bank_channel.refresh_from_db()
    change.refresh_from_db()
    assert bank_channel.config == new
    assert (change.status, change.proposed_by, change.decided_by) == ("applied", alice, bob)
    assert change.base_config == BASE  # the audit trail says what it replaced
    last = bank_channel.history.order_by("-history_id").first()
    assert last.history_user == bob and last.config == new and "key rotation" in last.history_change_reason
    with pytest.raises(DomainError) as err:  # applied once
        channel_config_change_approve(change_id=change.pk, by=bob)
    assert err.value.code == "invalid_state"


def test_proposals_refuse_inline_secrets_and_one_pending_change_per_channel(bank_channel):
    alice = staff_user("chan_alice", "channel_admin")
    for secret in ("secret", "app_private_key", "apiv3_key"):
        with pytest.raises(DomainError) as err:
            channel_config_validate(config={**BASE, secret: "inline-value"})
        assert err.value.code == "invalid_request"
    channel_config_validate(config={**BASE, "secret_env": "BANKX_SECRET"})
    channel_config_change_propose(channel_id=bank_channel.pk, config={**BASE, "key_id": "k2"}, reason="a", by=alice)
    with pytest.raises(DomainError) as err:
        channel_config_change_propose(channel_id=bank_channel.pk, config={**BASE, "key_id": "k3"}, reason="b", by=alice)
    assert err.value.code == "invalid_state"


def test_a_proposal_made_against_an_older_config_is_void(bank_channel):
    a, b = staff_user("chan_a", "channel_admin"), staff_user("chan_b", "channel_admin")
    change = channel_config_change_propose(
        channel_id=bank_channel.pk, config={**BASE, "key_id": "k2"}, reason="a", by=a
    )
    channel_config_change_reject(change_id=change.pk, by=a, note="withdrawn")
    change.refresh_from_db()
    assert change.status == ChannelConfigChange.Status.REJECTED
    stale = channel_config_change_propose(channel_id=bank_channel.pk, config={**BASE, "key_id": "k3"}, reason="b", by=a)
    Channel.objects.filter(pk=bank_channel.pk).update(config={**BASE, "timeout": 5})  # changed meanwhile
    with pytest.raises(DomainError) as err:
        channel_config_change_approve(change_id=stale.pk, by=b)
    assert err.value.code == "invalid_state"
    stale.refresh_from_db()
    assert stale.status == ChannelConfigChange.Status.SUPERSEDED
    bank_channel.refresh_from_db()
    assert bank_channel.config["timeout"] == 5


def test_key_material_by_environment_variable(monkeypatch, tmp_path):
    from channels.adapters._common import material
    from channels.base import ConfigError

    monkeypatch.setenv("BANKX_SECRET", "s3cret")
    assert material({"secret_env": "BANKX_SECRET"}, "secret") == "s3cret"
    (tmp_path / "secret.txt").write_text("from-file\n")
    assert material({"secret_file": str(tmp_path / "secret.txt")}, "secret") == "from-file"
    monkeypatch.delenv("BANKX_SECRET")
    with pytest.raises(ConfigError):
        material({"secret_env": "BANKX_SECRET"}, "secret")
