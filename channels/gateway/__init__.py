"""The sandbox gateway: a separate loopback process standing in for the real payout providers.

It speaks bank-direct (our HMAC JSON protocol), the Alipay open platform fund-transfer API and the WeChat Pay
v3 merchant transfer API with real signatures, keeps its own SQLite book of the payouts it received, sends
signed callbacks, serves daily statements, and exposes a control API under ``/_control/`` for tests and demos.
No Django ORM here: ``python manage.py sandbox_gateway`` only parses arguments and calls ``run``.
"""

from .server import Gateway, run

__all__ = ["Gateway", "run"]
