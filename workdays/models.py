"""The working-day calendar: only the exceptions to "Monday to Friday work, Saturday and Sunday rest" are stored.
A public holiday (法定节假日, including the days moved next to it) rests on a weekday; a make-up working day
(调休上班) works on a weekend day. The rows come from the data files in ``workdays/data/`` (one per year) and
are editable in the admin."""

from __future__ import annotations

from django.db import models


class CalendarDay(models.Model):
    class Kind(models.TextChoices):
        HOLIDAY = "holiday", "放假 (public holiday)"
        MAKEUP_WORKDAY = "makeup_workday", "调休上班 (make-up working day)"

    date = models.DateField(unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=50, help_text="e.g. 春节, 国庆节调休")
    provisional = models.BooleanField(
        default=False, help_text="not yet published by the State Council: replace when the notice is out"
    )
    source = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["date"]
        verbose_name = "calendar day"

    def __str__(self) -> str:
        return f"{self.date} {self.name} ({self.get_kind_display()})"
