from __future__ import annotations

import pytest

from tests.factories import ChannelFactory, MerchantFactory, reviewer


@pytest.fixture(autouse=True)
def _eager_celery(settings):  # type: ignore[no-untyped-def]
    """Tasks run in-process unless a test starts a real worker; on_commit still decides when they run."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def sandbox_channel(db):  # type: ignore[no-untyped-def]
    return ChannelFactory()


@pytest.fixture
def merchant_alice(db, sandbox_channel):  # type: ignore[no-untyped-def]
    return MerchantFactory(name="Alice 游戏点卡", real_name="张三", username="alice")


@pytest.fixture
def merchant_mallory(db, sandbox_channel):  # type: ignore[no-untyped-def]
    return MerchantFactory(name="Mallory 话费", real_name="李四", id_number="310101198001010018", username="mallory")


@pytest.fixture
def reviewer_bob(db):  # type: ignore[no-untyped-def]
    return reviewer("bob")


@pytest.fixture
def reviewer_carol(db):  # type: ignore[no-untyped-def]
    return reviewer("carol")
