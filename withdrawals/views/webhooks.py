"""Webhooks on the merchant pages (the accounts-and-security area): register an endpoint (its secret shown once),
disable / enable it, send a test event, the delivery log with each delivery's attempts, and replay.

Every id in a URL is looked up within the request's merchant (webhooks.selectors): another merchant's endpoint
or delivery is a 404, never a 403 that would confirm it exists."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import (
    deliveries_of,
    delivery_attempts,
    delivery_of_merchant,
    endpoint_of_merchant,
    endpoints_of,
)
from webhooks.services import (
    EVENT_TYPES,
    TEST_EVENT_TYPE,
    delivery_replay,
    endpoint_create,
    endpoint_disable,
    endpoint_enable,
    endpoint_test_send,
)

from .common import merchant_required, request_merchant

DELIVERIES_PER_PAGE = 25


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(max_length=500, label="接收地址 (URL)")
    description = forms.CharField(max_length=100, required=False, label="备注")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES if t != TEST_EVENT_TYPE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="事件类型（不选即接收全部）",
    )


def _own_endpoint(request: HttpRequest, pk: int) -> WebhookEndpoint:
    endpoint = endpoint_of_merchant(merchant_id=request_merchant(request).pk, endpoint_id=pk)
    if endpoint is None:
        raise Http404
    return endpoint


def _own_delivery(request: HttpRequest, pk: int) -> WebhookDelivery:
    delivery = delivery_of_merchant(merchant_id=request_merchant(request).pk, delivery_id=pk)
    if delivery is None:
        raise Http404
    return delivery


@merchant_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    """The endpoints, the register form and the delivery log (filter by status). After registering, this same
    response shows the new secret: it is never shown again (it is kept only encrypted, for signing)."""
    merchant = request_merchant(request)
    new_secret: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                endpoint, secret = endpoint_create(
                    merchant_id=merchant.pk,
                    url=data["url"],
                    description=data["description"],
                    event_types=data["event_types"],
                )
            except DomainError as exc:
                form.add_error("url" if exc.code.startswith("webhook_url") else None, exc.message)
                status = 400
            else:
                new_secret = {"endpoint": endpoint, "secret": secret}
                form = WebhookEndpointForm()
        else:
            status = 400
    else:
        form = WebhookEndpointForm()
    status_filter = request.GET.get("status", "")
    if status_filter not in WebhookDelivery.Status.values:
        status_filter = ""
    page = Paginator(deliveries_of(merchant_id=merchant.pk, status=status_filter), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "merchant/webhooks.html",
        {
            "endpoints": list(endpoints_of(merchant_id=merchant.pk)),
            "form": form,
            "new_secret": new_secret,
            "page": page,
            "status_filter": status_filter,
            "statuses": WebhookDelivery.Status.choices,
            "nav": "webhooks",
        },
        status=status,
    )


@merchant_required
@require_POST
def webhook_endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _own_endpoint(request, pk)
    try:
        endpoint_test_send(endpoint_id=endpoint.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"已向 {endpoint.url} 发送测试事件，结果见下方投递记录")
    return redirect("merchant:webhooks")


@merchant_required
@require_POST
def webhook_endpoint_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _own_endpoint(request, pk)
    if request.POST.get("action") == "enable":
        endpoint_enable(endpoint_id=endpoint.pk)
        messages.success(request, f"已启用 {endpoint.url}，待投递的事件将重新发送")
    else:
        endpoint_disable(endpoint_id=endpoint.pk, reason="disabled by the merchant")
        messages.success(request, f"已停用 {endpoint.url}")
    return redirect("merchant:webhooks")


@merchant_required
def webhook_delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = _own_delivery(request, pk)
    attempts = delivery_attempts(delivery_id=delivery.pk)
    return render(
        request,
        "merchant/webhook_delivery.html",
        {
            "delivery": delivery,
            "attempts": attempts,
            "nav": "webhooks",
        },
    )


@merchant_required
@require_POST
def webhook_delivery_replay(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = _own_delivery(request, pk)
    try:
        delivery_replay(delivery_id=delivery.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"已重新发送事件 {delivery.event.event_id}")
    return redirect("merchant:webhook_delivery", pk=delivery.pk)
