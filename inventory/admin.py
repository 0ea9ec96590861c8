import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin
from import_export.formats import base_formats
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.contrib.import_export.forms import ExportForm, ImportForm
from unfold.decorators import action, display

from fablab.admin_base import ReadOnlyTabInline
from fablab.admin_exports import DayRangeFilter, book_actions
from fablab.exceptions import ApplicationError
from fablab.html import colour_swatches
from inventory import books, labels, selectors, services, shopping
from inventory.choices import MOVEMENT_KIND_COLORS
from inventory.forms import (
    AdjustForm,
    MoveForm,
    ProductStockForm,
    ReceiveForm,
    SaleBatchForm,
    SaleForm,
    SaleReturnForm,
    SaleRowFormSet,
    SpoolForm,
    UseForm,
    WeighForm,
)
from inventory.models import (
    Filament,
    Location,
    Movement,
    Product,
    ProductMovement,
    ProductStock,
    Sale,
    Spool,
    StockAlert,
    grams_display,
)
from inventory.resources import SaleResource


def _bar(value, total, *, warn_below=None):
    total = float(total or 0)
    share = 0 if total <= 0 else max(0.0, min(1.0, float(value or 0) / total))
    low = warn_below is not None and float(value or 0) < float(warn_below)
    colour = "#dc2626" if low else "var(--color-primary-600, #0d9488)"
    return format_html(
        '<div style="display:flex;align-items:center;gap:.5rem"><div style="width:90px;height:8px;border-radius:4px;'
        'background:rgba(0,0,0,.1)"><div style="width:{}%;height:8px;border-radius:4px;background:{}"></div></div>'
        "<span>{} g</span></div>", round(share * 100), colour, f"{float(value or 0):.0f}",
    )


def form_page(model_admin, request, *, obj, form_class, title: str, submit: str, run, done_url: str,
              allowed: bool | None = None):
    """GET shows the form, POST runs one service call; refusals are shown on the form.

    `allowed`: whether the user may run it; by default whether they may change `obj`."""
    if not (model_admin.has_change_permission(request, obj) if allowed is None else allowed):
        raise DjangoPermissionDenied
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            message = run(form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, message)
            return redirect(done_url)
    context = {**model_admin.admin_site.each_context(request), "title": title, "form": form, "submit": submit,
               "opts": model_admin.model._meta, "object": obj, "back_url": done_url}
    return TemplateResponse(request, "inventory/admin/form.html", context)


def _adopt(obj, saved) -> None:
    """The admin goes on with the object its form built: make it the row the service created."""
    obj.pk = saved.pk
    obj.refresh_from_db()


@admin.register(Location)
class LocationAdmin(ModelAdmin):
    list_display = ["__str__", "kind"]
    list_filter = ["kind"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]

    def get_queryset(self, request):
        return selectors.location_list()

    def save_model(self, request, obj, form, change):
        if change:
            services.location_update(location=obj, name=obj.name, kind=obj.kind, parent=obj.parent)
        else:
            _adopt(obj, services.location_create(name=obj.name, kind=obj.kind, parent=obj.parent))


@admin.register(Filament)
class FilamentAdmin(ModelAdmin):
    list_display = ["show_colour", "brand", "material", "name", "show_stock", "reorder_threshold_g", "cost_per_kg",
                    "currency", "supplier"]
    list_display_links = ["show_colour", "name"]
    list_filter = ["material", "brand", "supplier"]
    search_fields = ["brand", "material", "name", "colour_hex", "supplier"]
    exclude = ["vendor"]  # linked from the brand by the services

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """Brand, material and name stay required here; only Spoolman clients may leave them out."""
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("brand", "material", "name"):
            field.required = True
        return field

    def get_queryset(self, request):
        return selectors.filament_list()

    def save_model(self, request, obj, form, change):
        if change:
            services.filament_update(filament=obj, **form.cleaned_data)
        else:
            _adopt(obj, services.filament_create(**form.cleaned_data))

    @display(description=_("colour"), ordering="colour_hex")
    def show_colour(self, obj):
        return colour_swatches(obj.colours, size="1rem")

    actions_detail = ["open_receive"]

    def get_urls(self):
        return [
            path("shopping-list/", self.admin_site.admin_view(self.shopping_list_view),
                 name="inventory_shopping_list"),
            path("<int:object_id>/receive/", self.admin_site.admin_view(self.receive_view),
                 name="inventory_filament_receive"),
            *super().get_urls(),
        ]

    @action(description=_("Receive spools"), icon="add_box", url_path="open-receive")
    def open_receive(self, request, object_id):
        return redirect("admin:inventory_filament_receive", object_id)

    def receive_view(self, request, object_id):
        filament = self.get_object(request, str(object_id))
        if filament is None:
            raise Http404

        def run(data):
            for n in range(data["count"]):
                services.spool_receive(filament=filament, initial_grams=data["grams"], location=data["location"],
                                       lot_number=data["lot_number"], rfid_tag=data["rfid_tag"], by=request.user,
                                       idempotency_key=f"{data['idempotency_key']}/{n}")
            return ngettext("%(n)s spool of %(filament)s received.", "%(n)s spools of %(filament)s received.",
                            data["count"]) % {"n": data["count"], "filament": filament}

        return form_page(self, request, obj=filament, form_class=ReceiveForm, submit=_("Receive"), run=run,
                         title=_("Receive spools of %(filament)s") % {"filament": filament},
                         done_url=reverse("admin:inventory_filament_change", args=[filament.pk]))

    def shopping_list_view(self, request):
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        rows = shopping.shopping_list()
        stamp = timezone.localdate().isoformat()
        if request.GET.get("format") == "csv":
            response = HttpResponse(shopping.to_csv(rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="shopping-list-{stamp}.csv"'
            return response
        if request.GET.get("format") == "xlsx":
            response = HttpResponse(
                shopping.to_xlsx(rows),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            response["Content-Disposition"] = f'attachment; filename="shopping-list-{stamp}.xlsx"'
            return response
        context = {
            **self.admin_site.each_context(request), "title": _("Shopping list"), "opts": self.model._meta,
            "groups": shopping.grouped(rows),
        }
        return TemplateResponse(request, "inventory/admin/shopping_list.html", context)

    @display(description=_("in stock"), ordering="stock_g")
    def show_stock(self, obj):
        return _bar(obj.stock_g, max(float(obj.net_weight_g) * 3, float(obj.stock_g or 0)),
                    warn_below=obj.reorder_threshold_g or None)


class ShowsDelta:
    """The ledger keeps micrograms; people read grams to two decimals."""

    @display(description=_("change (g)"), ordering="delta_grams")
    def show_delta(self, obj):
        return f"{grams_display(obj.delta_grams):+}"


class HistoryInline(ReadOnlyTabInline):
    """A ledger, newest first: stock changes only through the services."""

    ordering = ["-created_at", "-id"]
    verbose_name_plural = _("history")


class MovementInline(ShowsDelta, HistoryInline):
    model = Movement
    fields = ["created_at", "show_kind", "show_delta", "reason", "source_type", "source_id", "created_by"]

    @display(description=_("kind"), label=MOVEMENT_KIND_COLORS)
    def show_kind(self, obj):
        return obj.kind, obj.get_kind_display()


@admin.register(Spool)
class SpoolAdmin(ModelAdmin):
    list_display = ["code", "show_colour", "filament", "show_remaining", "location", "lot_number", "opened_at",
                    "archived_at"]
    list_filter = [("filament__material", admin.AllValuesFieldListFilter),
                   ("filament__brand", admin.AllValuesFieldListFilter),
                   ("filament__colour_hex", admin.AllValuesFieldListFilter),
                   ("location", RelatedDropdownFilter), "archived_at"]
    # Scanning a label types its code into the search box (or a tag reader its RFID tag).
    search_fields = ["code", "filament__name", "filament__brand", "lot_number", "rfid_tag"]
    form = SpoolForm
    readonly_fields = ["code", "filament", "show_initial", "show_remaining_grams", "location", "opened_at",
                       "archived_at"]
    fields = ["code", "filament", "lot_number", "rfid_tag", "show_initial", "show_remaining_grams", "location",
              "opened_at", "archived_at"]
    inlines = [MovementInline]
    actions = ["archive", "print_labels"]
    actions_detail = ["open_use", "open_weigh", "open_adjust", "open_move"]

    def get_queryset(self, request):
        return selectors.spool_list(archived=None)

    def save_model(self, request, obj, form, change):
        services.spool_update(spool=obj, lot_number=obj.lot_number, rfid_tag=obj.rfid_tag)  # no add: received

    def get_urls(self):
        return [
            path("<int:object_id>/use/", self.admin_site.admin_view(self.use_view), name="inventory_spool_use"),
            path("<int:object_id>/weigh/", self.admin_site.admin_view(self.weigh_view), name="inventory_spool_weigh"),
            path("<int:object_id>/adjust/", self.admin_site.admin_view(self.adjust_view),
                 name="inventory_spool_adjust"),
            path("<int:object_id>/move/", self.admin_site.admin_view(self.move_view), name="inventory_spool_move"),
            *super().get_urls(),
        ]

    @action(description=_("Book use"), icon="remove_circle", url_path="open-use")
    def open_use(self, request, object_id):
        return redirect("admin:inventory_spool_use", object_id)

    @action(description=_("Correct the count"), icon="edit_note", url_path="open-adjust")
    def open_adjust(self, request, object_id):
        return redirect("admin:inventory_spool_adjust", object_id)

    @action(description=_("Weigh"), icon="scale", url_path="open-weigh")
    def open_weigh(self, request, object_id):
        return redirect("admin:inventory_spool_weigh", object_id)

    @action(description=_("Move"), icon="move_item", url_path="open-move")
    def open_move(self, request, object_id):
        return redirect("admin:inventory_spool_move", object_id)

    def _spool(self, request, object_id) -> Spool:
        spool = self.get_object(request, str(object_id))
        if spool is None:
            raise Http404
        return spool

    def weigh_view(self, request, object_id):
        spool = self._spool(request, object_id)

        def run(data):
            movement = services.spool_weigh(spool=spool, gross_grams=data["gross_grams"], by=request.user,
                                            idempotency_key=data["idempotency_key"])
            return _("%(code)s weighed: %(delta)s g booked.") % {"code": spool.code,
                                                                  "delta": grams_display(movement.delta_grams)}

        return form_page(self, request, obj=spool, form_class=WeighForm, submit=_("Book the weight"), run=run,
                         title=_("Weigh %(code)s") % {"code": spool.code},
                         done_url=reverse("admin:inventory_spool_change", args=[spool.pk]))

    def use_view(self, request, object_id):
        """A print, a failed print or waste took filament off the spool."""
        spool = self._spool(request, object_id)

        def run(data):
            movement = services.spool_use(spool=spool, grams_used=data["grams"], kind=data["kind"],
                                          reason=data["reason"], by=request.user,
                                          idempotency_key=data["idempotency_key"])
            return _("%(code)s: %(grams)s g booked as %(kind)s.") % {
                "code": spool.code, "grams": grams_display(-movement.delta_grams),
                "kind": movement.get_kind_display()}

        return form_page(self, request, obj=spool, form_class=UseForm, submit=_("Book"), run=run,
                         title=_("Book use of %(code)s") % {"code": spool.code},
                         done_url=reverse("admin:inventory_spool_change", args=[spool.pk]))

    def adjust_view(self, request, object_id):
        """Stocktaking: set the grams to what was counted, with the reason on record."""
        spool = self._spool(request, object_id)

        def run(data):
            movement = services.spool_adjust(spool=spool, remaining_grams=data["remaining_grams"],
                                             reason=data["reason"], by=request.user,
                                             idempotency_key=data["idempotency_key"])
            return _("%(code)s corrected: %(delta)s g booked.") % {"code": spool.code,
                                                                    "delta": grams_display(movement.delta_grams)}

        return form_page(self, request, obj=spool, form_class=AdjustForm, submit=_("Correct"), run=run,
                         title=_("Correct the count of %(code)s") % {"code": spool.code},
                         done_url=reverse("admin:inventory_spool_change", args=[spool.pk]))

    def move_view(self, request, object_id):
        spool = self._spool(request, object_id)

        def run(data):
            services.spool_move(spool=spool, location=data["location"], by=request.user,
                                idempotency_key=data["idempotency_key"])
            return _("%(code)s moved to %(location)s.") % {"code": spool.code, "location": data["location"]}

        return form_page(self, request, obj=spool, form_class=MoveForm, submit=_("Move"), run=run,
                         title=_("Move %(code)s") % {"code": spool.code},
                         done_url=reverse("admin:inventory_spool_change", args=[spool.pk]))

    def has_add_permission(self, request):
        return False  # spools are received (a 'received' movement), see the API and the receive action

    def get_search_results(self, request, queryset, search_term):
        code = search_term.strip().upper()
        if code.startswith("S-") and queryset.filter(code=code).exists():
            return queryset.filter(code=code), False
        return super().get_search_results(request, queryset, search_term)

    @display(description=_("colour"))
    def show_colour(self, obj):
        return colour_swatches(obj.filament.colours, size="1rem")

    @display(description=_("remaining"), ordering="remaining_grams")
    def show_remaining(self, obj):
        return _bar(obj.remaining_grams, obj.initial_grams)

    @display(description=_("filament when received (g)"))
    def show_initial(self, obj):
        return grams_display(obj.initial_grams)

    @display(description=_("remaining (g)"))
    def show_remaining_grams(self, obj):
        return grams_display(obj.remaining_grams)

    @action(description=_("Print labels for selected spools"))
    def print_labels(self, request, queryset):
        response = HttpResponse(labels.label_sheet_pdf(list(queryset.select_related("filament").order_by("code"))),
                                content_type="application/pdf")
        response["Content-Disposition"] = 'inline; filename="spool-labels.pdf"'
        return response

    @action(description=_("Archive selected spools"))
    def archive(self, request, queryset):
        for spool in queryset:
            services.spool_archive(spool=spool)
        messages.success(request, _("Spools archived."))


@admin.register(Movement)
class MovementAdmin(ShowsDelta, ModelAdmin):
    list_display = ["created_at", "spool", "show_kind", "show_delta", "reason", "source_type", "source_id",
                    "created_by"]
    list_filter = ["kind", "source_type"]
    search_fields = ["spool__code", "idempotency_key", "source_id", "reason"]
    readonly_fields = [f.name for f in Movement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the ledger is append-only

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=_("kind"), label=MOVEMENT_KIND_COLORS)
    def show_kind(self, obj):
        return obj.kind, obj.get_kind_display()


class ProductStockInline(ReadOnlyTabInline):
    model = ProductStock
    fields = ["location", "quantity"]


class ProductMovementInline(HistoryInline):
    model = ProductMovement
    fields = ["created_at", "kind", "location", "delta_units", "reason", "source_type", "source_id"]


@admin.register(Product)
class ProductAdmin(ModelAdmin):
    list_display = ["sku", "name", "kind", "show_stock", "reorder_threshold_units", "unit_cost", "sale_price",
                    "supplier"]
    list_filter = ["kind", "supplier"]
    search_fields = ["sku", "name", "supplier"]
    autocomplete_fields = ["variant"]
    inlines = [ProductStockInline, ProductMovementInline]
    actions_detail = ["open_stock", "open_sale"]

    def get_queryset(self, request):
        return selectors.product_list()

    def save_model(self, request, obj, form, change):
        if change:
            services.product_update(product=obj, **form.cleaned_data)
        else:
            _adopt(obj, services.product_create(**form.cleaned_data))

    @display(description=_("in stock"), ordering="units_in_stock")
    def show_stock(self, obj):
        return obj.units_in_stock

    def get_urls(self):
        return [
            path("<int:object_id>/stock/", self.admin_site.admin_view(self.stock_view),
                 name="inventory_product_stock"),
            path("<int:object_id>/sale/", self.admin_site.admin_view(self.sale_view), name="inventory_product_sale"),
            *super().get_urls(),
        ]

    @action(description=_("Book units"), icon="inventory", url_path="open-stock")
    def open_stock(self, request, object_id):
        return redirect("admin:inventory_product_stock", object_id)

    @action(description=_("Record a sale"), icon="point_of_sale", url_path="open-sale")
    def open_sale(self, request, object_id):
        return redirect("admin:inventory_product_sale", object_id)

    def _product(self, request, object_id) -> Product:
        product = self.get_object(request, str(object_id))
        if product is None:
            raise Http404
        return product

    def stock_view(self, request, object_id):
        """Units made, received, returned, or counted at a location."""
        product = self._product(request, object_id)

        def run(data):
            movement = services.product_stock_book(
                product=product, location=data["location"], kind=data["kind"], quantity=data["quantity"],
                reason=data["reason"], by=request.user, idempotency_key=data["idempotency_key"])
            return _("%(sku)s at %(location)s: %(delta)s units.") % {
                "sku": product.sku, "location": data["location"], "delta": f"{movement.delta_units:+d}"}

        return form_page(self, request, obj=product, form_class=ProductStockForm, submit=_("Book"), run=run,
                         title=_("Book units of %(sku)s") % {"sku": product.sku},
                         done_url=reverse("admin:inventory_product_change", args=[product.pk]))

    def sale_view(self, request, object_id):
        product = self._product(request, object_id)

        def run(data):
            sale = services.sale_record(
                product=product, location=data["location"], quantity=data["quantity"],
                unit_price=data["unit_price"], currency=data["currency"].upper(), sold_on=data["sold_on"],
                channel=data["channel"], by=request.user, idempotency_key=data["idempotency_key"])
            return _("Sale of %(n)s × %(sku)s recorded.") % {"n": sale.quantity, "sku": product.sku}

        return form_page(self, request, obj=product, form_class=SaleForm, submit=_("Record the sale"), run=run,
                         title=_("Record a sale of %(sku)s") % {"sku": product.sku},
                         done_url=reverse("admin:inventory_product_change", args=[product.pk]))


@admin.register(Sale)
class SaleAdmin(ModelAdmin, ImportExportModelAdmin):
    """Sales and returns. Recorded through the services only: one sale (on a product), several at once, a CSV
    or Excel import (inventory.resources: every row through the service, all or nothing), a return (on a
    sale); exported as CSV or Excel. Sales velocity has its own page."""

    list_display = ["sold_on", "product", "channel", "quantity", "unit_price", "currency", "reference",
                    "return_of"]
    list_filter = ["channel", "sold_on", ("product", RelatedDropdownFilter)]
    search_fields = ["product__sku", "product__name", "reference"]
    readonly_fields = [f.name for f in Sale._meta.fields]
    resource_classes = [SaleResource]
    import_form_class = ImportForm
    export_form_class = ExportForm
    import_formats = [base_formats.CSV, base_formats.XLSX]
    export_formats = [base_formats.CSV, base_formats.XLSX]
    actions_list = ["open_batch", "open_velocity"]
    actions_detail = ["open_return"]

    def get_queryset(self, request):
        return selectors.sale_list()

    def has_add_permission(self, request):
        return False  # sales are recorded through the service, which also takes the units out of stock

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger is append-only: a sale is undone with a return

    def _may_record(self, request) -> bool:
        return request.user.has_perm("inventory.add_sale")

    def has_import_permission(self, request):
        return self._may_record(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_resource_kwargs(self, request, **kwargs):
        return {**super().get_import_resource_kwargs(request, **kwargs), "by": request.user}

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():  # refused while confirming: nothing was written
            messages.error(request, _("The import was refused and nothing was recorded; check the file and import "
                                      "it again."))
            return redirect("admin:inventory_sale_changelist")
        return super().process_result(result, request)

    def get_urls(self):
        return [
            path("batch/", self.admin_site.admin_view(self.batch_view), name="inventory_sale_batch"),
            path("velocity/", self.admin_site.admin_view(self.velocity_view), name="inventory_sale_velocity"),
            path("<int:object_id>/return/", self.admin_site.admin_view(self.return_view),
                 name="inventory_sale_return"),
            *super().get_urls(),
        ]

    @action(description=_("Record several sales"), icon="playlist_add", url_path="open-batch",
            permissions=["record"])
    def open_batch(self, request):
        return redirect("admin:inventory_sale_batch")

    def has_record_permission(self, request, object_id=None):
        return self._may_record(request)

    @action(description=_("Sales velocity"), icon="monitoring", url_path="open-velocity")
    def open_velocity(self, request):
        return redirect("admin:inventory_sale_velocity")

    @action(description=_("Record a return"), icon="undo", url_path="open-return", permissions=["record"])
    def open_return(self, request, object_id):
        return redirect("admin:inventory_sale_return", object_id)

    def return_view(self, request, object_id):
        sale = self.get_object(request, str(object_id))
        if sale is None:
            raise Http404

        def run(data):
            back = services.sale_return(sale=sale, quantity=data["quantity"], location=data["location"],
                                        returned_on=data["returned_on"], by=request.user,
                                        idempotency_key=data["idempotency_key"])
            return _("%(n)s × %(sku)s came back.") % {"n": -back.quantity, "sku": sale.product.sku}

        return form_page(self, request, obj=sale, form_class=SaleReturnForm, allowed=self._may_record(request),
                         submit=_("Record the return"), run=run,
                         title=_("Return of sale %(id)s (%(sale)s)") % {"id": sale.pk, "sale": sale},
                         done_url=reverse("admin:inventory_sale_change", args=[sale.pk]))

    def batch_view(self, request):
        """Several sales on one page (a market day's till roll), recorded all together or not at all."""
        if not self._may_record(request):
            raise DjangoPermissionDenied
        initial = {"channel": "market", "sold_on": timezone.localdate()}
        page = SaleBatchForm(request.POST or None)
        formset = SaleRowFormSet(request.POST or None, form_kwargs={"initial": initial}, prefix="sales")
        if request.method == "POST" and page.is_valid() and formset.is_valid():
            filled = [(n, form) for n, form in enumerate(formset.forms) if form.has_changed()]
            rows = [{**form.cleaned_data, "idempotency_key": f"{page.cleaned_data['idempotency_key']}/{n}"}
                    for n, form in filled]
            if not rows:
                page.add_error(None, _("Fill in at least one sale."))
            else:
                try:
                    sales = services.sale_record_many(rows=rows, by=request.user)
                except ApplicationError as exc:
                    page.add_error(None, exc.message)
                    for index, message in exc.extra.get("rows", {}).items():
                        filled[index][1].add_error(None, message)
                else:
                    messages.success(request, ngettext("%(n)s sale recorded.", "%(n)s sales recorded.", len(sales))
                                     % {"n": len(sales)})
                    return redirect("admin:inventory_sale_changelist")
        context = {**self.admin_site.each_context(request), "title": _("Record several sales"), "form": page,
                   "formset": formset, "opts": self.model._meta,
                   "back_url": reverse("admin:inventory_sale_changelist")}
        return TemplateResponse(request, "inventory/admin/sales_batch.html", context)

    def velocity_view(self, request):
        """Units per week over 4, 12 and 52 weeks with the trend, top sellers and slow movers, and a chart."""
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        velocity = selectors.sales_velocity()
        top = selectors.sales_top_sellers(weeks=4, limit=5)
        context = {
            **self.admin_site.each_context(request), "title": _("Sales velocity"), "opts": self.model._meta,
            "velocity": velocity, "top": top, "slow": selectors.sales_slow_movers(limit=10),
            "chart": json.dumps(selectors.sales_chart(velocities=top or velocity)),
        }
        return TemplateResponse(request, "inventory/admin/sales_velocity.html", context)


@admin.register(StockAlert)
class StockAlertAdmin(ModelAdmin):
    list_display = ["raised_at", "item_type", "filament", "product", "level", "threshold", "cleared_at",
                    "notified_at"]
    list_filter = ["item_type", ("cleared_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in StockAlert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The books for the accountant (inventory.books): material used per month from the selected or filtered ledger
# rows, and sales with net, VAT and gross; a range of days narrows either list first.
MovementAdmin.list_filter = [*MovementAdmin.list_filter, ("created_at", DayRangeFilter)]
MovementAdmin.list_filter_submit = True
SaleAdmin.list_filter = [*(f for f in SaleAdmin.list_filter if f != "sold_on"), ("sold_on", RangeDateFilter)]
SaleAdmin.list_filter_submit = True
MovementAdmin.actions = [*(MovementAdmin.actions or []),
                         *book_actions(lambda queryset: books.material_table_for(movements=queryset), "books_material")]
SaleAdmin.actions = [*(SaleAdmin.actions or []),
                     *book_actions(lambda queryset: books.sales_table_for(sales=queryset), "books_sales")]
