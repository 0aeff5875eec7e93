"""A deterministic simulation of the whole platform over simulated days (``make simulate SEED=n DAYS=d``).

In the spirit of TigerBeetle's VOPR and the Jepsen bank test: one seed decides everything — merchants, sales,
withdrawals, step-ups, reviews, cancellations, retries, channel behaviour, network and broker faults, worker
crashes — and the real services, the real Celery tasks, the real periodic jobs (read from the beat schedule)
and the real channel adapters run against a real PostgreSQL database, while a clock (time-machine) jumps from
one event to the next instead of sleeping. After every simulated hour the invariants are checked
(``simulation.invariants``); a failure names the seed, the hour and the withdrawal with its events.

What is replaced, and only that:
- the network: a ``requests`` transport hands each adapter request to the sandbox gateway's own protocol
  handlers and engine in this process, and decides per request whether it is delivered, late, lost or its
  answer lost (``simulation.channel``); the gateway's callbacks reach ``/callbacks/<code>/`` through Django's
  test client, with the gateway's fault kinds (lost, duplicate, late, out of order) drawn from the seed;
- the broker: ``Task.apply_async`` publishes into the simulation's queue keyed by simulated due time
  (countdown honoured), which can lose or duplicate a message (``simulation.kernel``);
- the worker processes: two worker threads that run one task at a time each, handing over control only at a
  channel call, so two tasks interleave exactly where real workers would race (``simulation.kernel``).

This package is the top of the dependency graph: it may import every app; no app imports it.
"""
