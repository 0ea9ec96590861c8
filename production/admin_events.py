"""Admin of market events (Production → Market events), imported by production.admin.

The event's page edits its fields, its products (target, units taken and returned) and its checklist; every
save goes through production.events. Its readiness (stock and queue against each target, the checklist) and,
once counts are entered or the event is closed, its results (sold, sell-through, revenue, margin) are shown
on the page. Actions, on the page and on the selected events of the list: "Recommend products", "Queue the
shortfall", "Close the event (record sales)", "Start preparing" and "Back to planned". A closed event is
read-only.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from fablab.exceptions import ApplicationError
from production import event_selectors, events
from production.choices import MARKET_EVENT_STATUS_COLORS, EventTheme, MarketEventStatus
from production.models import EventChecklistItem, EventProduct, MarketEvent

CONFIRMATIONS = {
    "recommend": (gettext_lazy("Recommend products"), gettext_lazy(
        "Products sold at past events sharing this event's themes, with units scaled to its length, plus this "
        "season's sales. Products not on the event yet are added with the recommendation as their target; "
        "targets you set stay as they are.")),
    "queue": (gettext_lazy("Queue the shortfall"), gettext_lazy(
        "For each printed product: target − units in stock − units still to come from the queue is queued as "
        "print jobs, due the day before the event. Queueing again adds only what is still missing.")),
    "close": (gettext_lazy("Close the event (record sales)"), gettext_lazy(
        "For each product, taken − returned is recorded as a market sale at its sale price, dated the event's "
        "first day, and leaves stock. Enter and save the units taken and returned first. A closed event cannot "
        "be changed.")),
    MarketEventStatus.PREPARING: (gettext_lazy("Start preparing"), gettext_lazy(
        "The event moves from planned to preparing.")),
    MarketEventStatus.PLANNED: (gettext_lazy("Back to planned"), gettext_lazy(
        "The event moves back from preparing to planned.")),
}
FORM_FIELDS = ["name", "starts_on", "ends_on", "place", "stall_fee", "currency", "themes", "notes"]


def _closed(event) -> bool:
    return event is not None and event.pk is not None and event.status == MarketEventStatus.DONE


def _percent(share) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


class MarketEventForm(forms.ModelForm):
    themes = forms.MultipleChoiceField(label=gettext_lazy("themes"), choices=EventTheme.choices, required=False,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = MarketEvent
        fields = FORM_FIELDS

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned[name] for name in FORM_FIELDS if name in cleaned}
        if len(values) != len(FORM_FIELDS):
            return cleaned  # a field's own error is shown already
        try:
            cleaned.update(events.market_event_clean(event=self.instance if self.instance.pk else None, **values))
        except ApplicationError as exc:
            raise ValidationError(exc.message) from None
        return cleaned


class EventProductForm(forms.ModelForm):
    class Meta:
        model = EventProduct
        fields = ["product", "target_units", "taken_units", "returned_units"]

    def clean(self):
        cleaned = super().clean()
        try:
            taken = events.event_units(cleaned.get("taken_units"), field=_("Units taken"), allow_none=True)
            returned = events.event_units(cleaned.get("returned_units"), field=_("Units returned"), allow_none=True)
            events.event_units(cleaned.get("target_units", 0), field=_("The target"))
        except ApplicationError as exc:
            raise ValidationError(exc.message) from None
        if returned is not None and (taken is None or returned > taken):
            raise ValidationError(_("More units cannot come back (%(returned)s) than were taken (%(taken)s).")
                                  % {"returned": returned, "taken": taken or 0})
        return cleaned


class EventProductFormSet(BaseInlineFormSet):
    """Lines saved through events.market_event_product_set, removed through market_event_product_remove."""

    def _values(self, form) -> dict:
        data = form.cleaned_data
        return {"target_units": data.get("target_units") or 0, "taken_units": data.get("taken_units"),
                "returned_units": data.get("returned_units")}

    def save_new(self, form, commit=True):
        return events.market_event_product_set(event=self.instance, product=form.cleaned_data["product"],
                                               **self._values(form))

    def save_existing(self, form, obj, commit=True):
        product = form.cleaned_data["product"]
        if "product" in form.changed_data:
            old = EventProduct.objects.get(pk=obj.pk)
            events.market_event_product_remove(line=old)
        return events.market_event_product_set(event=self.instance, product=product, **self._values(form))

    def delete_existing(self, obj, commit=True):
        events.market_event_product_remove(line=obj)


class EventChecklistFormSet(BaseInlineFormSet):
    """Items saved through the checklist services of production.events."""

    def save_new(self, form, commit=True):
        data = form.cleaned_data
        item = events.market_event_checklist_add(event=self.instance, text=data["text"], assignee=data.get("assignee"))
        if data.get("done"):
            item = events.market_event_checklist_update(item=item, done=True)
        return item

    def save_existing(self, form, obj, commit=True):
        data = form.cleaned_data
        return events.market_event_checklist_update(item=obj, text=data["text"], assignee=data.get("assignee"),
                                                    done=bool(data.get("done")))

    def delete_existing(self, obj, commit=True):
        events.market_event_checklist_remove(item=obj)


class _EventInline(TabularInline):
    extra = 0
    tab = True

    def has_add_permission(self, request, obj=None):
        return not _closed(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _closed(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _closed(obj) and super().has_delete_permission(request, obj)


class EventProductInline(_EventInline):
    model = EventProduct
    form = EventProductForm
    formset = EventProductFormSet
    fields = ["product", "target_units", "taken_units", "returned_units", "recommended_units", "show_sold"]
    readonly_fields = ["recommended_units", "show_sold"]
    autocomplete_fields = ["product"]
    verbose_name_plural = gettext_lazy("products")

    @display(description=gettext_lazy("sold"))
    def show_sold(self, obj):
        sold = obj.sold_units if obj.pk else None
        return "–" if sold is None else sold


class EventChecklistInline(_EventInline):
    model = EventChecklistItem
    formset = EventChecklistFormSet
    fields = ["text", "assignee", "done"]
    verbose_name_plural = gettext_lazy("checklist")


@admin.register(MarketEvent)
class MarketEventAdmin(ModelAdmin):
    form = MarketEventForm
    list_display = ["name", "starts_on", "ends_on", "place", "show_status", "show_themes", "show_prepared"]
    list_filter = ["status"]
    search_fields = ["name", "place"]
    date_hierarchy = "starts_on"
    inlines = [EventProductInline, EventChecklistInline]
    actions = ["recommend_selected", "queue_selected", "close_selected"]
    actions_detail = ["recommend_detail", "queue_detail", "close_detail", "prepare_detail", "plan_detail"]
    readonly_fields = ["status", "show_readiness", "show_results", "closed_at", "closed_by"]

    def get_fieldsets(self, request, obj=None):
        sets = [(None, {"fields": [*(["status"] if obj else []), *FORM_FIELDS]})]
        if obj is not None:
            sets += [(gettext_lazy("Readiness"), {"fields": ["show_readiness"]}),
                     (gettext_lazy("Results"), {"fields": ["show_results", "closed_at", "closed_by"]})]
        return sets

    def get_readonly_fields(self, request, obj=None):
        if _closed(obj):
            return [*self.readonly_fields, *FORM_FIELDS]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in FORM_FIELDS}
        if change:
            events.market_event_update(event=obj, **values)
        else:
            saved = events.market_event_create(**values)
            obj.pk = saved.pk
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        try:
            formset.save()
        except ApplicationError as exc:
            messages.error(request, exc.message)

    # --- columns and panels -------------------------------------------------------------------------------------

    @display(description=gettext_lazy("status"), ordering="status", label=MARKET_EVENT_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=gettext_lazy("themes"))
    def show_themes(self, obj):
        labels = dict(EventTheme.choices)
        return ", ".join(str(labels.get(theme, theme)) for theme in obj.themes or []) or "–"

    @display(description=gettext_lazy("prepared"))
    def show_prepared(self, obj):
        if obj.status == MarketEventStatus.DONE:
            results = event_selectors.market_event_results(event=obj)
            return _("sold %(sold)s of %(taken)s, margin %(margin)s %(currency)s") % {
                "sold": results.sold, "taken": results.taken, "margin": results.margin_after_fee,
                "currency": obj.currency}
        readiness = event_selectors.market_event_readiness(event=obj)
        ready = sum(1 for row in readiness.products if row.ready)
        return _("%(ready)s of %(total)s products in stock, checklist %(share)s") % {
            "ready": ready, "total": len(readiness.products), "share": _percent(readiness.checklist_share)}

    @display(description=gettext_lazy("readiness"))
    def show_readiness(self, obj):
        readiness = event_selectors.market_event_readiness(event=obj)
        if not readiness.products and not readiness.checklist_total:
            return _("No products and no checklist yet.")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (row.line.product, row.target, row.stock, row.queued, row.shortfall or "–",
             _("yes") if row.ready else _("covered by the queue") if row.covered_by_queue else _("no"))
            for row in readiness.products))
        return format_html(
            '<table class="w-full text-sm"><thead><tr><th class="text-left">{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            _("product"), _("target"), _("in stock"), _("to come from the queue"), _("short"), _("ready"), rows,
            _("Checklist: %(done)s of %(total)s done (%(share)s); print jobs are due %(due)s.") % {
                "done": readiness.checklist_done, "total": readiness.checklist_total,
                "share": _percent(readiness.checklist_share),
                "due": events.market_event_due(event=obj).strftime("%Y-%m-%d %H:%M")},
        )

    @display(description=gettext_lazy("results"))
    def show_results(self, obj):
        results = event_selectors.market_event_results(event=obj)
        if not results.taken:
            return _("Enter the units taken and returned per product, then close the event.")
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (row.line.product, row.taken, row.returned, row.sold, _percent(row.sell_through),
                 "–" if row.revenue is None else f"{row.revenue} {row.currency}",
                 "–" if row.margin is None else f"{row.margin} {row.currency}")
                for row in results.products))
        note = "" if obj.status == MarketEventStatus.DONE else _("Not closed yet: today's prices and costs.")
        return format_html(
            '<table class="w-full text-sm"><thead><tr><th class="text-left">{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table><p>{}</p><p>{}</p>",
            _("product"), _("taken"), _("returned"), _("sold"), _("sell-through"), _("revenue"), _("margin"), rows,
            _("Revenue %(revenue)s, margin %(margin)s, less the stall fee %(fee)s: %(net)s %(currency)s.") % {
                "revenue": results.revenue, "margin": results.margin, "fee": obj.stall_fee,
                "net": results.margin_after_fee, "currency": obj.currency},
            note,
        )

    # --- actions ------------------------------------------------------------------------------------------------

    def _run(self, request, event, what: str) -> None:
        try:
            if what == "recommend":
                lines = events.market_event_recommend(event=event)
                if lines:
                    messages.success(request, _("%(event)s: recommended %(products)s.") % {
                        "event": event.name, "products": ", ".join(
                            f"{line.product.sku} ×{line.recommended_units}" for line in lines)})
                else:
                    messages.warning(request, _("%(event)s: no past event shares its themes and nothing sold "
                                                "lately; nothing to recommend.") % {"event": event.name})
            elif what == "queue":
                result = events.market_event_queue_shortfall(event=event, by=request.user)
                messages.success(request, ngettext(
                    "%(event)s: %(count)d print job queued.", "%(event)s: %(count)d print jobs queued.",
                    len(result.jobs)) % {"event": event.name, "count": len(result.jobs)})
                for text in result.skipped:
                    messages.warning(request, text)
            elif what == "close":
                events.market_event_close(event=event, by=request.user)
                messages.success(request, _("%(event)s is closed; its sales are recorded.") % {"event": event.name})
            else:
                events.market_event_transition(event=event, status=what)
                messages.success(request, _("%(event)s is now %(status)s.") % {
                    "event": event.name, "status": MarketEventStatus(what).label})
        except ApplicationError as exc:
            messages.error(request, f"{event.name}: {exc.message}")

    def _detail(self, request, object_id, what: str):
        """GET: a page that says what the action does, with its button; POST (CSRF-protected): do it."""
        event = self.get_object(request, str(object_id))
        if event is None:
            raise Http404(_("No such market event."))
        if not self.has_change_permission(request, event):
            raise PermissionDenied
        change_url = reverse("admin:production_marketevent_change", args=[event.pk])
        if request.method == "POST":
            self._run(request, event, what)
            return HttpResponseRedirect(change_url)
        title, explanation = CONFIRMATIONS[what]
        context = {**self.admin_site.each_context(request), "title": f"{event.name}: {title}", "opts": self.model._meta,
                   "original": event, "explanation": explanation, "button": title, "change_url": change_url}
        return TemplateResponse(request, "production/admin/market_event_confirm.html", context)

    @action(description=gettext_lazy("Recommend products"), permissions=["change"])
    def recommend_selected(self, request, queryset):
        for event in queryset:
            self._run(request, event, "recommend")

    @action(description=gettext_lazy("Queue the shortfall"), permissions=["change"])
    def queue_selected(self, request, queryset):
        for event in queryset:
            self._run(request, event, "queue")

    @action(description=gettext_lazy("Close the event (record sales)"), permissions=["change"])
    def close_selected(self, request, queryset):
        for event in queryset:
            self._run(request, event, "close")

    @action(description=gettext_lazy("Recommend products"), icon="auto_awesome", url_path="recommend",
            permissions=["change"])
    def recommend_detail(self, request, object_id):
        return self._detail(request, object_id, "recommend")

    @action(description=gettext_lazy("Queue the shortfall"), icon="print", url_path="queue-shortfall",
            permissions=["change"])
    def queue_detail(self, request, object_id):
        return self._detail(request, object_id, "queue")

    @action(description=gettext_lazy("Close the event (record sales)"), icon="point_of_sale", url_path="close",
            permissions=["change"])
    def close_detail(self, request, object_id):
        return self._detail(request, object_id, "close")

    @action(description=gettext_lazy("Start preparing"), icon="inventory_2", url_path="prepare",
            permissions=["change"])
    def prepare_detail(self, request, object_id):
        return self._detail(request, object_id, MarketEventStatus.PREPARING)

    @action(description=gettext_lazy("Back to planned"), icon="undo", url_path="plan", permissions=["change"])
    def plan_detail(self, request, object_id):
        return self._detail(request, object_id, MarketEventStatus.PLANNED)

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        event = self.get_object(request, str(object_id))
        if event is None or event.status == MarketEventStatus.DONE:
            return []
        hidden = "_prepare_detail" if event.status == MarketEventStatus.PREPARING else "_plan_detail"
        return [item for item in actions if not item.action_name.endswith(hidden)]
