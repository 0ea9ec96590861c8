from datetime import datetime
from typing import Literal

from ninja import Schema

from fablab.api_types import choice
from fablab.choices import ApiKeyScope, ApiKeyStatus, MembershipRole, OrganizationKind


class CheckOut(Schema):
    ok: bool
    latency_ms: float
    error: str | None = None


class HealthOut(Schema):
    status: Literal["ok", "degraded"]
    checks: dict[str, dict]


class OrganizationOut(Schema):
    id: int
    name: str
    slug: str
    kind: choice(OrganizationKind)
    created_at: datetime


class MemberOut(Schema):
    id: int
    email: str
    role: choice(MembershipRole)
    joined_at: datetime

    @staticmethod
    def resolve_email(obj) -> str:
        return obj.user.email

    @staticmethod
    def resolve_joined_at(obj) -> datetime:
        return obj.created_at


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    scope: choice(ApiKeyScope)
    status: choice(ApiKeyStatus)
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
