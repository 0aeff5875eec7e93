from __future__ import annotations

import pytest

# Tests that move money commit for real (transactional_db): on_commit hooks enqueue tasks exactly as in
# production, and row locks are real. Fixtures therefore build on transactional_db.
from tests.factories import ALICE_CREDIT, ChannelFactory, MerchantFactory, reviewer


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run in-process unless a test starts a real worker; on_commit still decides when they run."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def sandbox_channel(transactional_db):
    return ChannelFactory()


@pytest.fixture
def merchant_alice(sandbox_channel):
    return MerchantFactory(name="Alice 游戏点卡", real_name="张三", username="alice", credit=ALICE_CREDIT)


@pytest.fixture
def merchant_mallory(sandbox_channel):
    return MerchantFactory(name="Mallory 话费", real_name="李四", id_number="310101198001010018", username="mallory")


@pytest.fixture
def reviewer_bob(transactional_db):
    return reviewer("bob")


@pytest.fixture
def reviewer_carol(transactional_db):
    return reviewer("carol")


@pytest.fixture
def workday_calendar(transactional_db):
    """The holiday calendar of workdays/data/ (a transactional test's flush empties what the data migration
    loaded)."""
    from workdays.loader import load
    from workdays.models import CalendarDay

    load(CalendarDay)
