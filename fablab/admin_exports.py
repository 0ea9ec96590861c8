"""Admin changelist actions that download the selected (or, with "select all", the filtered) rows as a book for
the accountant (fablab.exports): CSV in the staff member's language's convention, or XLSX.

`book_actions(build, name)` gives the two actions for a changelist; `build(queryset)` returns the Table (each
app's books module). A refused export (a period over ten years) is an error message, not a file.
`DayRangeFilter` narrows a changelist to a range of days first.
"""

from collections.abc import Callable

from django.contrib import messages
from django.db.models import QuerySet
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import action
from unfold.utils import parse_date_str

from fablab import exports
from fablab.exceptions import ApplicationError


def _download(build: Callable[[QuerySet], exports.Table], fmt: str, modeladmin, request, queryset):
    language = translation.get_language()
    try:
        table = build(queryset)
        return exports.response(table, exports.resolve_format(fmt, language=language), language=language)
    except ApplicationError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None


def book_actions(build: Callable[[QuerySet], exports.Table], name: str) -> list:
    """The "CSV for the accountant" and "Excel for the accountant" actions of one book, named `name`_csv/_xlsx."""

    @action(description=_("Export for the accountant (CSV)"))
    def as_csv(modeladmin, request, queryset):
        return _download(build, exports.CSV, modeladmin, request, queryset)

    @action(description=_("Export for the accountant (Excel)"))
    def as_xlsx(modeladmin, request, queryset):
        return _download(build, exports.XLSX, modeladmin, request, queryset)

    for function, suffix in ((as_csv, "csv"), (as_xlsx, "xlsx")):
        function.__name__ = function.original_function_name = f"{name}_{suffix}"
    return [as_csv, as_xlsx]


class DayRangeFilter(RangeDateFilter):
    """unfold's date range filter for a date-time field: the days from and to, both included, in the current
    time zone (the plain filter would stop at the first moment of the last day)."""

    def queryset(self, request, queryset):
        filters = {}
        for suffix, lookup in (("_from", "gte"), ("_to", "lte")):
            value = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if isinstance(value, str) and value:
                day = parse_date_str(value)
                if day is None:
                    return None
                filters[f"{self.parameter_name}__date__{lookup}"] = day
        return queryset.filter(**filters)
