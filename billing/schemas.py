from datetime import datetime

from ninja import Schema


class MonthUsageOut(Schema):
    used: int
    limit: int | None


class DayUsageOut(Schema):
    used: int
    limit: int | None
    resets_at: datetime


class UsageOut(Schema):
    plan: str | None
    period_start: datetime
    period_end: datetime
    month: MonthUsageOut
    day: DayUsageOut
    overage_units: int
