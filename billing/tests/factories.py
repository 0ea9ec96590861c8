from datetime import datetime
from zoneinfo import ZoneInfo

from billing import selectors, services
from billing.models import OrganizationPlan


def on_plan(organization, key: str) -> OrganizationPlan:
    """Give `organization` one of the four plans of the data migration (as a comp)."""
    return services.plan_grant(organization=organization, plan=selectors.plan_get(key=key))


def at(text: str, zone: str = "UTC") -> datetime:
    """An aware datetime from 'YYYY-MM-DD HH:MM' in a time zone."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
