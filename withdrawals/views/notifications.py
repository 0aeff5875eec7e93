"""The merchant's notifications: the list and marking them read."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import notifications_of
from accounts.services import notifications_mark_read as mark_read

from .common import merchant_required, request_merchant


@merchant_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    rows = notifications_of(merchant_id=request_merchant(request).pk)
    page = Paginator(rows, 30).get_page(request.GET.get("page"))
    return render(request, "merchant/notifications.html", {"page": page, "nav": "notifications"})


@merchant_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    """One notification (``id``) or all of them; back to ``next`` when it is on this site."""
    note_id = request.POST.get("id", "")
    mark_read(merchant_id=request_merchant(request).pk, notification_id=int(note_id) if note_id.isdigit() else None)
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("merchant:notifications")
