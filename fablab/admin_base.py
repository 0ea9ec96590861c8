"""Admin building blocks every app uses."""

from unfold.admin import TabularInline


class ReadOnlyTabInline(TabularInline):
    """Related rows shown read-only in their own tab: they are written by services, not by this form."""

    extra = 0
    can_delete = False
    tab = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False
