"""The merchant's notifications: the list and marking them read."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Notification

from .common import (
    merchant_required,
    request_merchant,
)


# --- notifications ----------------------------------------------------------------------------------------
@merchant_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    qs = request_merchant(request).notifications.all()
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(request, "merchant/notifications.html", {"page": page, "nav": "notifications"})


@merchant_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    qs = Notification.objects.filter(merchant=request_merchant(request), read_at__isnull=True)
    note_id = request.POST.get("id", "")
    if note_id.isdigit():
        qs = qs.filter(pk=int(note_id))
    qs.update(read_at=timezone.now())
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("merchant:notifications")
