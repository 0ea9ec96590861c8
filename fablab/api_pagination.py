from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

# Far beyond any list; larger offsets overflow the database's integers (a 500 instead of an answer).
MAX_OFFSET = 10**9


class Pagination(LimitOffsetPagination):
    """limit/offset pagination; a limit above API_PAGE_SIZE_MAX or an offset above MAX_OFFSET is refused with 422."""

    class Input(Schema):
        limit: int = Field(settings.API_PAGE_SIZE_DEFAULT, ge=1, le=settings.API_PAGE_SIZE_MAX)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    class Output(Schema):
        items: list[Any]
        count: int
        limit: int
        offset: int

    def paginate_queryset(self, queryset: QuerySet, pagination: Input, request: HttpRequest, **params) -> Any:
        page = super().paginate_queryset(queryset, pagination, request, **params)
        return {**page, "limit": pagination.limit, "offset": pagination.offset}
