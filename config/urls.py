from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error

from channels.views import ops_view
from config.catalogue import error_body
from config.health import live, ready
from config.metrics import metrics_view
from withdrawals.callbacks import channel_callback_view

urlpatterns = [
    path("admin/ops/", admin.site.admin_view(ops_view), name="admin_ops"),
    path("admin/", admin.site.urls),
    path("callbacks/<slug:channel_code>/", channel_callback_view, name="channel_callback"),
    path("healthz/live", live, name="healthz_live"),
    path("healthz/ready", ready, name="healthz_ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("withdrawals.api.urls")),
    path("", include("withdrawals.urls")),
]


def _api_error(code: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(code), status=status)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return _api_error("not_found", 404)
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return _api_error("internal_error", 500)
    return server_error(request)
