"""schemathesis against the served contract: requests generated from ``/api/v1/schema`` (positive and negative
data for every operation, then stateful runs that follow the schema's links create → get → cancel), sent to the
Django WSGI application with a real key. Every response must conform to the schema (status documented, body and
headers valid, content type) and none may be a 5xx. At least 1,000 requests in all, counted by Django itself.

Rate limits and the failed-authentication lockout are off here (they are tested in tests/test_api.py): the point
is the contract, not 429s. The money moves for real (transactional database, eager Celery)."""

from __future__ import annotations

import contextlib
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_started
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from accounts.services import api_key_create
from tests.factories import card_for
from withdrawals.models import Withdrawal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MIN_REQUESTS = 1_000
EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 35, GenerationMode.NEGATIVE: 20}
STATEFUL_RUNS = 10
STATEFUL_ROUNDS = 6
STATEFUL_STEPS = 8
# Schema-valid data may meet a business refusal (422: funds, limits; 409: a state or key conflict; 404: an id
# that is not yours) but never a 400: a 400 for data the schema allows means the contract is too loose.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "404", "409", "422", "429"]
"""


@pytest.fixture
def api(merchant_alice, settings):
    settings.API_RATE_LIMIT = ""
    settings.AXES_ENABLED = False
    card_for(merchant_alice, "12")  # a second account: the accounts list has two entries
    key = api_key_create(merchant=merchant_alice)
    # the key as the schema's own security scheme (ApiKey, http bearer): schemathesis knows it is the real one
    config = SchemathesisConfig.from_str(CONFIG + f'\n[auth.openapi.ApiKey]\nbearer = "{key}"\n')
    return schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", get_wsgi_application(), config=config)


@pytest.fixture
def requests_counted():
    """Requests Django served, by path template (what the test sends, not what schemathesis says it sent)."""
    counter: Counter[str] = Counter()

    def count(sender, environ, **kwargs):
        counter[environ.get("REQUEST_METHOD", "") + " " + environ.get("PATH_INFO", "")] += 1

    request_started.connect(count, weak=False)
    yield counter
    request_started.disconnect(count)


def test_generated_requests_conform_to_the_contract(api, requests_counted, merchant_alice):
    schema = api
    default_account = merchant_alice.payout_accounts.get(is_default=True).pk
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    statuses: Counter[int] = Counter()

    for operation in operations:
        for mode, examples in EXAMPLES_PER_OPERATION.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def run(case):
                response = case.call_and_validate()
                statuses[response.status_code] += 1

            run()

    failures: list[str] = []

    class Stateful(schema.as_state_machine()):
        def before_call(self, case):
            # A partner that knows its payout account: the schema's link from GET /payout-accounts cannot put the
            # id into the create's body, so the scenario does (the generated phases above keep random ids).
            # Only a generated id that is itself valid (an integer >= 1) is replaced: negative cases keep theirs.
            body = case.body
            if case.method == "POST" and case.path == "/api/v1/withdrawals" and isinstance(body, dict):
                given = body.get("payout_account")
                if isinstance(given, int) and not isinstance(given, bool) and given >= 1:
                    body["payout_account"] = default_account

        def after_call(self, response, case):
            statuses[response.status_code] += 1

        def validate_response(self, response, case, *args, **kwargs):
            try:
                return super().validate_response(response, case, *args, **kwargs)
            except Exception as exc:  # recorded before Hypothesis replays (and may call the replay flaky)
                failures.append(f"{case.method} {case.formatted_path}: {exc}")
                raise

    rounds = 0
    while rounds < STATEFUL_ROUNDS:
        rounds += 1
        # A scenario's links depend on what the database answered, so Hypothesis can meet a different set of
        # allowed steps when it revisits a prefix (FlakyStrategyDefinition); schemathesis's own runner restarts
        # then too. Every check failure was recorded above, so nothing is lost by starting the next round.
        with contextlib.suppress(FlakyStrategyDefinition):
            Stateful.run(
                settings=hypothesis.settings(
                    max_examples=STATEFUL_RUNS,
                    stateful_step_count=STATEFUL_STEPS,
                    # no shrinking: a replay meets a database the first run changed (schemathesis's default too)
                    phases=[hypothesis.Phase.generate],
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    # the same scenarios on every run: how many of them reach a real create is not luck
                    derandomize=True,
                )
            )
        assert not failures, failures

    total = sum(requests_counted.values())
    print(f"schemathesis: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total >= MIN_REQUESTS, (total, requests_counted)
    assert not [s for s in statuses if s >= 500], statuses
    # the generator reached the API's real answers, not only refusals: the generated phases' creates name ids
    # that are not the caller's (422, rightly); the stateful scenario, which knows its account, creates for real
    assert statuses[201] >= 1 and statuses[200] >= 100, statuses
    created = set(Withdrawal.objects.values_list("pk", flat=True))
    followed: dict[str, set[int]] = {"get": set(), "cancel": set()}
    for request in requests_counted:
        method, _, path = request.partition(" ")
        parts = path.strip("/").split("/")  # api, v1, withdrawals, id[, cancel]
        if parts[2:3] == ["withdrawals"] and len(parts) >= 4 and parts[3].isdigit() and int(parts[3]) in created:
            if method == "GET" and len(parts) == 4:
                followed["get"].add(int(parts[3]))
            elif method == "POST" and parts[4:] == ["cancel"]:
                followed["cancel"].add(int(parts[3]))
    # the links were followed: withdrawals the run created were fetched and cancelled by their ids
    assert followed["get"] and followed["cancel"], (followed, created)
