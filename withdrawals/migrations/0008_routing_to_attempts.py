"""Data: the routing JSON bag of existing withdrawals into payout attempts, answers and columns."""

from datetime import datetime

from django.db import migrations


def routing_to_attempts(apps, schema_editor):
    """Carry each withdrawal's routing JSON bag over: its routing decision becomes attempt 1, the counters and
    timestamps become columns, each channel it had left becomes a 'moved on' answer."""
    Withdrawal = apps.get_model("withdrawals", "Withdrawal")
    PayoutAttempt = apps.get_model("withdrawals", "PayoutAttempt")
    PayoutAnswer = apps.get_model("withdrawals", "PayoutAnswer")
    for w in Withdrawal.objects.exclude(routing={}).iterator():
        r = w.routing or {}
        if r.get("winner") or w.channel_code:
            code = r.get("winner") or w.channel_code
            chosen = next((c for c in r.get("candidates", []) if c.get("channel") == code), {})
            w.current_attempt = PayoutAttempt.objects.create(
                withdrawal=w,
                number=1,
                channel_code=code,
                channel_name=chosen.get("name", ""),
                expected_arrival_seconds=chosen.get("arrival"),
                order_no=w.order_no,
                amount=w.net_amount,
                policy=r.get("policy", ""),
                explanation={
                    k: v for k, v in r.items() if k in ("policy", "policy_text", "winner", "why", "candidates")
                },
                admission_refused=r.get("admission_refused", {}),
                created_at=w.state_changed_at,
            )
        for code in r.get("excluded", []):
            PayoutAnswer.objects.create(
                withdrawal=w, channel_code=code, source="worker", outcome="refused", moved_on=True
            )
        w.unknown_count = r.get("unknown_count", 0)
        w.poll_count = r.get("poll_count", 0)
        for field in ("awaiting_payee_since", "escalated_at"):
            if r.get(field):
                setattr(w, field, datetime.fromisoformat(r[field]))
        w.save()


class Migration(migrations.Migration):
    dependencies = [("withdrawals", "0007_payout_attempts")]
    operations = [migrations.RunPython(routing_to_attempts, migrations.RunPython.noop)]
