"""django-simple-history in the admin, made safe for personal data and least privilege.

* The historical form view (``…/history/<version>/``) only shows: simple-history saves a POST there for anyone
  who may *view* history — a revert that bypasses ``has_change_permission``, the read-only fields and the
  services (a KYC identity back to an old name, a channel config back to an old endpoint).
* The history list's "changes" column masks encrypted personal numbers and hides their keyed hashes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from .crypto import EncryptedTextField, HashField
from .pii import mask_any


class MaskedHistoryContextHelper(HistoricalRecordContextHelper):
    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        field = self.model._meta.get_field(change.field)
        if isinstance(field, EncryptedTextField):
            return mask_any(str(value or ""))
        if isinstance(field, HashField):
            return "（已变更）" if value else ""
        return super().prepare_delta_change_value(change, value)


class SafeHistoryAdmin(SimpleHistoryAdmin):
    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied  # history is read-only: changes go through the change form and the services
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> Any:
        return MaskedHistoryContextHelper(self.model, historical_record)
