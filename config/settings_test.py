"""Settings of the test suite (pyproject: pytest-django and mypy's Django plugin load this module).

The suite is not production: the Django test client speaks plain HTTP, SMS codes go to the in-process outbox
(risk.sms.MemorySmsProvider) and a throwaway secret signs sessions. The values are set as environment defaults,
so processes the tests start (a Celery worker, runserver for the browser tests) get the same. Tests of the
production refusals start ``config.settings`` in a subprocess with a production environment."""

import os

os.environ.setdefault("DJANGO_TESTING", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-suite-secret-key-" + "not-for-production-" * 3)
os.environ.setdefault("SMS_PROVIDER", "memory")
# Not the demo's gateway port (8700): a `make run` on the same machine, with its own keys, must never answer the
# suite. Nothing listens on port 9, so channels seeded with the default address are refused at once, as in CI;
# the gateway end-to-end tests start their own gateway on a free port.
os.environ.setdefault("SANDBOX_GATEWAY_URL", "http://127.0.0.1:9")

from .settings import *  # noqa: F403
