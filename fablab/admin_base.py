"""Admin building blocks every app uses."""

from unfold.admin import ModelAdmin, TabularInline


class ReadOnlyTabInline(TabularInline):
    """Related rows shown read-only in their own tab: they are written by services, not by this form."""

    extra = 0
    can_delete = False
    tab = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyModelAdmin(ModelAdmin):
    """Rows only services write (ledgers, records of what happened): shown, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
