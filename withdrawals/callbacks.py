"""Provider callbacks: POST /callbacks/<channel_code>/.

The adapter verifies the signature and freshness (``InvalidCallback`` otherwise: refused, never acted on). A
notification id we have handled before is a replay: acknowledged, nothing changes. Otherwise the result goes
through ``payout_apply_result``, which never moves a withdrawal backwards and changes nothing when applied twice,
so duplicated and reordered callbacks are harmless. The answer is in the format each provider expects (each
adapter's ``callback_answer``: the adapter owns its protocol), so it stops retrying once we have stored the
notification.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels.adapters import callback_answer
from channels.base import ConfigError, InvalidCallback, PayoutResult
from channels.models import Channel
from channels.services import channel_adapter, channel_callback_receipt, channel_callback_seen

from .models import Withdrawal
from .payouts import payout_apply_result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackOutcome:
    accepted: bool  # False: signature / freshness / body did not verify
    outcome: str  # applied, unchanged, ignored, duplicate, unknown_order, invalid
    order_no: str = ""
    detail: str = ""


def payout_callback_receive(*, channel_code: str, headers: object, body: bytes) -> CallbackOutcome:
    adapter = channel_adapter(code=channel_code)
    try:
        result: PayoutResult = adapter.parse_callback(headers, body)  # type: ignore[arg-type]
    except InvalidCallback as exc:
        log.warning("callback for %s refused: %s", channel_code, exc)
        return CallbackOutcome(False, "invalid", detail=str(exc))
    notify_id = str(result.raw.get("notify_id") or "")
    if notify_id and channel_callback_seen(channel_code=channel_code, notify_id=notify_id):
        return CallbackOutcome(True, "duplicate", result.order_no)
    w = Withdrawal.objects.filter(order_no=result.order_no).only("pk").first()
    if w is None:
        log.warning("callback from %s for an order we do not know: %s", channel_code, result.order_no)
        outcome = "unknown_order"
    else:
        outcome = payout_apply_result(withdrawal_id=w.pk, result=result, source="callback", expect_channel=channel_code)
    if notify_id:
        channel_callback_receipt(
            channel_code=channel_code,
            notify_id=notify_id,
            order_no=result.order_no,
            status=str(result.status),
            outcome=outcome,
        )
    return CallbackOutcome(True, outcome, result.order_no)


def _answer(adapter: str, outcome: CallbackOutcome) -> HttpResponse:
    # Why a callback was refused (signature, freshness, body) is logged in payout_callback_receive, never
    # told to the sender: a forger learns nothing from trying.
    answer = callback_answer(adapter, accepted=outcome.accepted, outcome=outcome.outcome)
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    if outcome.accepted:
        response["X-Callback-Outcome"] = outcome.outcome
    return response


@csrf_exempt
@require_POST
def channel_callback_view(request: HttpRequest, channel_code: str) -> HttpResponse:
    adapter = Channel.objects.filter(code=channel_code).values_list("adapter", flat=True).first()
    if adapter is None or adapter == Channel.Adapter.SANDBOX:
        return JsonResponse({"error": "unknown channel"}, status=404)
    try:
        outcome = payout_callback_receive(channel_code=channel_code, headers=request.headers, body=request.body)
    except ConfigError as exc:  # the channel's own config is unusable: let the provider retry later
        log.error("callback for %s cannot be checked: %s", channel_code, exc)
        return HttpResponse(json.dumps({"error": "try again later"}), status=503, content_type="application/json")
    return _answer(adapter, outcome)
