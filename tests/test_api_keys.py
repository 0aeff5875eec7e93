"""A key's last use is recorded without a write on every request: at most once a minute."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)


def _key_writes(queries):
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "accounts_apikey" in q["sql"]]


def test_last_use_is_written_at_most_once_a_minute(merchant_alice):
    raw = api_key_create(merchant=merchant_alice)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    assert key.last_used_at is None
    with time_machine.travel(T0, tick=False):
        with CaptureQueriesContext(connection) as first:
            assert client.get("/api/v1/wallet").status_code == 200
        assert len(_key_writes(first.captured_queries)) == 1
        key.refresh_from_db()
        assert key.last_used_at == T0
    with time_machine.travel(T0 + dt.timedelta(seconds=59), tick=False):
        with CaptureQueriesContext(connection) as within:
            for _ in range(5):
                assert client.get("/api/v1/wallet").status_code == 200
        assert _key_writes(within.captured_queries) == []
        key.refresh_from_db()
        assert key.last_used_at == T0
    with time_machine.travel(T0 + dt.timedelta(seconds=61), tick=False):
        with CaptureQueriesContext(connection) as after:
            assert client.get("/api/v1/wallet").status_code == 200
            assert client.get("/api/v1/wallet").status_code == 200
        assert len(_key_writes(after.captured_queries)) == 1
        key.refresh_from_db()
        assert key.last_used_at == T0 + dt.timedelta(seconds=61)
