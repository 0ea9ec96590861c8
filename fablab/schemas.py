from datetime import datetime

from ninja import Schema


class CheckOut(Schema):
    ok: bool
    latency_ms: float
    error: str | None = None


class HealthOut(Schema):
    status: str
    checks: dict[str, dict]


class OrganizationOut(Schema):
    id: int
    name: str
    slug: str
    kind: str
    created_at: datetime


class MemberOut(Schema):
    id: int
    email: str
    role: str
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
    scope: str
    status: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
