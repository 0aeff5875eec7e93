"""What an adapter owns: telling a config it cannot use (``ConfigError``, never a bare ``ValueError``) and the
acknowledgement its provider expects for a callback."""

from __future__ import annotations

import json
import logging
from typing import cast

import pytest
from django.test import Client

from channels.adapters import adapter_class, build_adapter, callback_answer
from channels.base import CallbackAnswer, ConfigError
from tests.factories import ChannelFactory

BANKDIRECT = {"base_url": "https://bank.example/v1", "key_id": "k1", "secret": "s3cret"}


# --- ConfigError ----------------------------------------------------------------------------------------------


def test_a_config_the_adapter_cannot_use_is_a_config_error() -> None:
    assert build_adapter("bankdirect", "bd", BANKDIRECT).code == "bd"
    for adapter, config in (
        ("bankdirect", {**BANKDIRECT, "timeout": "soon"}),  # float("soon"): a ValueError inside the adapter
        ("bankdirect", {**BANKDIRECT, "callback_max_age": None}),  # int(None): a TypeError
        ("bankdirect", {}),  # a missing setting
        ("alipay", {"base_url": "https://a.example", "app_id": "1", "app_private_key": "not a key"}),
        ("no_such_adapter", {}),
    ):
        with pytest.raises(ConfigError):
            build_adapter(adapter, "x", config)


@pytest.mark.django_db(transaction=True)
def test_a_misconfigured_channel_answers_its_callbacks_503_and_a_bug_is_not_called_misconfigured(
    monkeypatch,
    caplog,
) -> None:
    ChannelFactory(code="bankdirect", name="银行直连", adapter="bankdirect", config={})
    caplog.set_level(logging.ERROR, logger="withdrawals.callbacks")
    answer = Client().post("/callbacks/bankdirect/", data=b"{}", content_type="application/json")
    assert answer.status_code == 503 and json.loads(answer.content) == {"error": "try again later"}
    assert "cannot be checked" in caplog.text
    # Any other ValueError is a bug: it is not answered as "misconfigured, try later".

    def broken(**kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("withdrawals.callbacks.payout_callback_receive", broken)
    buggy = Client(raise_request_exception=False).post(
        "/callbacks/bankdirect/", data=b"{}", content_type="application/json"
    )
    assert buggy.status_code == 500


# --- the acknowledgement each provider expects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "accepted", "expected"),
    [
        ("alipay", True, CallbackAnswer(200, b"success", "text/plain")),  # Alipay stops only on "success"
        ("alipay", False, CallbackAnswer(400, b"fail", "text/plain")),
        ("wechat", True, CallbackAnswer(200, b'{"code": "SUCCESS", "message": "\\u6210\\u529f"}')),
        ("wechat", False, CallbackAnswer(401, b'{"code": "FAIL", "message": "\\u5931\\u8d25"}')),
        ("bankdirect", True, CallbackAnswer(200, b'{"received": true, "outcome": "applied"}')),
        (
            "bankdirect",
            False,
            CallbackAnswer(401, b'{"error_code": "REJECTED", "error_message": "callback not accepted"}'),
        ),
    ],
)
def test_each_adapter_answers_callbacks_in_its_protocol(adapter: str, accepted: bool, expected: CallbackAnswer) -> None:
    assert callback_answer(adapter, accepted=accepted, outcome="applied") == expected
    assert adapter_class(adapter).callback_answer(accepted=accepted, outcome="applied") == expected


@pytest.mark.django_db(transaction=True)
def test_the_callback_view_sends_the_adapters_answer(monkeypatch) -> None:
    from withdrawals.callbacks import CallbackOutcome

    for code in ("alipay", "wechat", "bankdirect"):
        ChannelFactory(code=code, name=code, adapter=code, config={})
    monkeypatch.setattr(
        "withdrawals.callbacks.payout_callback_receive",
        lambda **kw: CallbackOutcome(True, "duplicate", "WD1"),
    )
    for code in ("alipay", "wechat", "bankdirect"):
        answer = Client().post(f"/callbacks/{code}/", data=b"x", content_type="text/plain")
        expected = callback_answer(code, accepted=True, outcome="duplicate")
        assert (answer.status_code, answer.content, answer["Content-Type"].split(";")[0]) == (
            expected.status,
            expected.body,
            expected.content_type,
        )
        assert answer["X-Callback-Outcome"] == "duplicate"


@pytest.mark.django_db(transaction=True)
def test_a_payout_to_a_channel_whose_config_is_unusable_is_refused_and_the_channel_paused() -> None:
    import json as _json

    from accounts.models import Merchant
    from accounts.services import api_key_create
    from channels.models import Channel
    from tests.factories import MerchantFactory
    from withdrawals.models import Status, Withdrawal

    ChannelFactory(code="bankx", name="银行直连", adapter="bankdirect", config={**BANKDIRECT, "timeout": "soon"})
    merchant = cast(Merchant, MerchantFactory(credit=1_000_000))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant)}")
    account = merchant.payout_accounts.get(is_default=True)
    body = _json.dumps({"amount": 10_000, "payout_account": account.pk})
    api.post("/api/v1/withdrawals", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="cfg-1")
    w = Withdrawal.objects.get()
    channel = Channel.objects.get(code="bankx")
    # Nothing was sent (the adapter could not be built): a definite refusal, the channel paused, no failure.
    assert channel.paused and channel.paused_reason.startswith("channel_misconfigured: channel config unusable")
    assert w.status == Status.APPROVED and w.failure_code == ""
