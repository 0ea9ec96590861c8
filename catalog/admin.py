from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeNumericFilter, RelatedDropdownFilter
from unfold.decorators import action, display

from catalog import selectors, services
from catalog.choices import EXTRACTION_STATUS_COLORS, ExtractionStatus
from catalog.models import (
    Category,
    Model,
    ModelImage,
    ModelVariant,
    SlicedFile,
    SlicedFileThumbnail,
    Tag,
    VariantVersion,
)
from fablab.admin_base import ReadOnlyTabInline
from fablab.exceptions import ApplicationError
from fablab.files import format_mib
from fablab.html import colour_swatches, duration_text


def _values(obj, names) -> dict:
    """The fields the admin's form put on `obj` (not saved yet), to hand to a service."""
    return {name: getattr(obj, name) for name in names}


def _adopt(obj, saved) -> None:
    """The admin goes on with the object its form built: make it the row the service created."""
    obj.pk = saved.pk
    obj.refresh_from_db()


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        if change:
            services.category_update(category=obj, name=obj.name)
        else:
            _adopt(obj, services.category_create(name=obj.name))


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        if change:
            services.tag_update(tag=obj, name=obj.name)
        else:
            _adopt(obj, services.tag_create(name=obj.name))


class ServiceFormSet(BaseInlineFormSet):
    """An inline whose rows the catalog's services create and change (the admin saves with commit=True)."""

    service_fields: list[str] = []

    def create(self, values: dict):
        raise NotImplementedError

    def update(self, obj, values: dict):
        raise NotImplementedError

    def save_new(self, form, commit=True):
        return self.create(_values(form.instance, self.service_fields))

    def save_existing(self, form, obj, commit=True):
        return self.update(obj, _values(obj, self.service_fields))


VARIANT_FIELDS = ["name", "sku", "colour", "material", "size"]


class VariantForm(forms.ModelForm):
    """A variant's fields; the SKU is checked against the catalog's rule (unique in any letter case)."""

    def clean_sku(self):
        try:
            return services.variant_sku_check(sku=self.cleaned_data["sku"], variant=self.instance)
        except ApplicationError as exc:
            raise ValidationError(exc.message) from None


class VariantFormSet(ServiceFormSet):
    service_fields = VARIANT_FIELDS

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            sku = (getattr(form, "cleaned_data", None) or {}).get("sku")
            if not sku or (self.can_delete and self._should_delete_form(form)):
                continue
            if sku.lower() in seen:
                raise ValidationError(_("SKU %(sku)s is given twice.") % {"sku": sku})
            seen.add(sku.lower())

    def create(self, values):
        return services.variant_create(model=self.instance, **values)

    def update(self, obj, values):
        return services.variant_update(variant=obj, model=self.instance, **values)


class VariantInline(TabularInline):
    model = ModelVariant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    fields = [*VARIANT_FIELDS, "current_version"]
    readonly_fields = ["current_version"]
    show_change_link = True
    tab = True


class ModelImageFormSet(ServiceFormSet):
    service_fields = ["image", "caption", "position"]

    def create(self, values):
        return services.model_image_create(model=self.instance, **values)

    def update(self, obj, values):
        return services.model_image_update(model_image=obj, **values)


class ModelImageInline(TabularInline):
    model = ModelImage
    formset = ModelImageFormSet
    extra = 0
    fields = ["image", "caption", "position"]
    tab = True


MODEL_FIELDS = ["name", "designer", "category", "description", "licence", "shared_with_partners"]


@admin.register(Model)
class CatalogModelAdmin(ModelAdmin):
    list_display = ["show_thumbnail", "name", "designer", "category", "show_variants", "show_tags", "updated_at"]
    list_display_links = ["show_thumbnail", "name"]
    list_filter = [("designer", RelatedDropdownFilter), ("category", RelatedDropdownFilter), "shared_with_partners",
                   "licence"]
    search_fields = ["name", "description", "tags__name", "variants__name", "variants__sku"]
    autocomplete_fields = ["designer", "category", "tags"]
    readonly_fields = ["created_by", "created_at", "updated_at", "show_versions"]
    fieldsets = [
        (None, {"fields": ["name", "designer", "category", "tags", "description", "licence", "shared_with_partners",
                           "created_by", "created_at", "updated_at"]}),
        (_("Versions"), {"classes": ["tab"], "fields": ["show_versions"]}),
    ]
    inlines = [VariantInline, ModelImageInline]

    @display(description=_("versions of all variants"))
    def show_versions(self, obj):
        if obj.pk is None:
            return "—"
        versions = VariantVersion.objects.filter(variant__model=obj).select_related("variant", "sliced_file")
        rows = format_html_join(
            "", "<tr><td style='padding-right:1rem'><a href='{}'>{} v{}</a></td><td style='padding-right:1rem'>{}</td>"
                "<td style='padding-right:1rem'>{}</td><td>{}</td></tr>",
            (
                (reverse("admin:catalog_variantversion_change", args=[v.pk]), v.variant.sku, v.number,
                 v.sliced_file.original_name, v.created_at.strftime("%Y-%m-%d %H:%M"), v.change_note)
                for v in versions.order_by("variant__sku", "-number")
            ),
        )
        return format_html("<table>{}</table>", rows) if versions else _("No versions yet.")

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).prefetch_related("tags").annotate(n_variants=Count("variants"))

    @display(description=_("variants"), ordering="n_variants")
    def show_variants(self, obj):
        return obj.n_variants

    @display(description=_("tags"))
    def show_tags(self, obj):
        return ", ".join(tag.name for tag in obj.tags.all())

    @display(description="")
    def show_thumbnail(self, obj):
        thumbnail = (
            SlicedFileThumbnail.objects.filter(sliced_file__versions__variant__model=obj)
            .order_by("-width").first()
        )
        if thumbnail is None:
            image = obj.images.first()
            url = image.image.url if image else None
        else:
            url = thumbnail.image.url
        if not url:
            return "—"
        return format_html('<img src="{}" alt="" style="height:40px;width:40px;object-fit:contain">', url)

    def save_model(self, request, obj, form, change):
        values = {**_values(obj, MODEL_FIELDS), "tags": [tag.name for tag in form.cleaned_data["tags"]]}
        if change:
            services.model_update(model=obj, **values)
        else:
            _adopt(obj, services.model_create(**values, created_by=request.user))

    def save_related(self, request, form, formsets, change):
        # The service has set the tags with the model; the inlines go through their own services.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class CurrentVersionForm(forms.Form):
    version = forms.ModelChoiceField(label=_("Version"), queryset=VariantVersion.objects.none(),
                                     widget=forms.RadioSelect)

    def __init__(self, *args, variant: ModelVariant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = selectors.version_list(variant=variant)


class VersionInline(ReadOnlyTabInline):
    """Versions are made by uploading a file (the variant's upload page), not here."""

    model = VariantVersion
    fields = ["number", "sliced_file", "change_note", "created_by", "created_at"]
    show_change_link = True


@admin.register(ModelVariant)
class ModelVariantAdmin(ModelAdmin):
    list_display = ["__str__", "sku", "show_colours", "filament_types", "printer_model", "layer_height",
                    "show_time", "filament_used_g", "current_version"]
    list_filter = [("model__designer", RelatedDropdownFilter), "printer_model", "layer_height", "nozzle_diameter",
                   ("estimated_time_s", RangeNumericFilter)]
    list_filter_submit = True
    search_fields = ["name", "sku", "model__name", "search_document"]
    autocomplete_fields = ["model"]
    readonly_fields = ["current_version", "printer_model", "filament_types", "filament_colours", "nozzle_diameter",
                       "layer_height", "estimated_time_s", "filament_used_g"]
    inlines = [VersionInline]
    form = VariantForm
    actions_detail = ["open_upload", "open_diff", "open_set_current"]

    @display(description=_("colours"))
    def show_colours(self, obj):
        return colour_swatches([c for c in obj.filament_colours.split(",") if c] or [obj.colour])

    @action(description=_("Upload sliced files"), icon="upload_file", url_path="open-upload")
    def open_upload(self, request, object_id):
        return redirect("admin:catalog_modelvariant_upload", object_id)

    @action(description=_("Compare versions"), icon="difference", url_path="open-diff")
    def open_diff(self, request, object_id):
        return redirect("admin:catalog_modelvariant_diff", object_id)

    @action(description=_("Make a version current"), icon="history", url_path="open-set-current")
    def open_set_current(self, request, object_id):
        return redirect("admin:catalog_modelvariant_set_current", object_id)

    def get_urls(self):
        return [
            path("<int:object_id>/current-version/", self.admin_site.admin_view(self.set_current_view),
                 name="catalog_modelvariant_set_current"),
            path("<int:object_id>/upload/", self.admin_site.admin_view(self.upload_view),
                 name="catalog_modelvariant_upload"),
            path("<int:object_id>/upload/file/", self.admin_site.admin_view(require_POST(self.upload_file_view)),
                 name="catalog_modelvariant_upload_file"),
            path("<int:object_id>/diff/", self.admin_site.admin_view(self.diff_view),
                 name="catalog_modelvariant_diff"),
            *super().get_urls(),
        ]

    def _variant_or_404(self, request, object_id, *, change=False):
        variant = self.get_object(request, str(object_id))
        if variant is None:
            raise Http404(_("No such variant."))
        allowed = self.has_change_permission(request, variant) if change else self.has_view_permission(request, variant)
        if not allowed:
            raise DjangoPermissionDenied
        return variant

    def upload_view(self, request, object_id):
        variant = self._variant_or_404(request, object_id, change=True)
        from django.conf import settings

        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload sliced files to %(variant)s") % {"variant": variant},
            "variant": variant,
            "opts": self.model._meta,
            "upload_url": reverse("admin:catalog_modelvariant_upload_file", args=[variant.pk]),
            "change_url": reverse("admin:catalog_modelvariant_change", args=[variant.pk]),
            "max_bytes": settings.CATALOG_MAX_UPLOAD_BYTES,
            "max_size": format_mib(settings.CATALOG_MAX_UPLOAD_BYTES),
            "accept": ",".join(services.ACCEPTED_SUFFIXES),
        }
        return TemplateResponse(request, "catalog/admin/variant_upload.html", context)

    def upload_file_view(self, request, object_id):
        """One file per request, so the page can show each file's progress and outcome."""
        variant = self._variant_or_404(request, object_id, change=True)
        upload = request.FILES.get("file")
        if upload is None:
            return JsonResponse({"error": str(_("No file was sent."))}, status=400)
        try:
            version = services.variant_upload_sliced_file(
                variant=variant, upload=upload, change_note=request.POST.get("change_note", ""),
                uploaded_by=request.user,
            )
        except ApplicationError as exc:
            return JsonResponse({"error": exc.message}, status=exc.status)
        sliced = version.sliced_file
        return JsonResponse({
            "version": version.number,
            "status": sliced.status,
            "status_label": str(sliced.get_status_display()),
            "url": reverse("admin:catalog_slicedfile_change", args=[sliced.pk]),
        }, status=201)

    def set_current_view(self, request, object_id):
        """Choose which version is current, e.g. go back to an older one."""
        variant = self._variant_or_404(request, object_id, change=True)
        change_url = reverse("admin:catalog_modelvariant_change", args=[variant.pk])
        form = CurrentVersionForm(request.POST or None, variant=variant,
                                  initial={"version": request.GET.get("version") or variant.current_version_id})
        if request.method == "POST" and form.is_valid():
            version = form.cleaned_data["version"]
            try:
                services.variant_set_current_version(variant=variant, version=version)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Version %(n)s is the current version of %(variant)s now.")
                                 % {"n": version.number, "variant": variant})
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Current version of %(variant)s") % {"variant": variant},
            "variant": variant, "form": form, "opts": self.model._meta, "change_url": change_url,
        }
        return TemplateResponse(request, "catalog/admin/variant_set_current.html", context)

    def diff_view(self, request, object_id):
        variant = self._variant_or_404(request, object_id)
        versions = list(selectors.version_list(variant=variant))
        numbers = [v.number for v in versions]
        try:
            after_n = int(request.GET.get("b") or (numbers[0] if numbers else 0))
            before_n = int(request.GET.get("a") or (numbers[1] if len(numbers) > 1 else after_n))
        except ValueError:
            raise Http404(_("Versions are given by number.")) from None
        diff = None
        if versions:
            try:
                before = selectors.version_get(variant=variant, number=before_n)
                after = selectors.version_get(variant=variant, number=after_n)
            except ApplicationError as exc:
                raise Http404(exc.message) from None
            diff = selectors.version_diff(before=before, after=after,
                                          changed_only=request.GET.get("all") != "1")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Compare versions of %(variant)s") % {"variant": variant},
            "variant": variant, "versions": versions, "opts": self.model._meta,
            "a": before_n, "b": after_n, "diff": diff, "show_all": request.GET.get("all") == "1",
            "change_url": reverse("admin:catalog_modelvariant_change", args=[variant.pk]),
        }
        return TemplateResponse(request, "catalog/admin/variant_diff.html", context)

    @display(description=_("print time"), ordering="estimated_time_s")
    def show_time(self, obj):
        return duration_text(obj.estimated_time_s)

    def save_model(self, request, obj, form, change):
        values = _values(obj, ["model", *VARIANT_FIELDS])
        if change:
            services.variant_update(variant=obj, **values)
        else:
            _adopt(obj, services.variant_create(**values))


class ThumbnailInline(ReadOnlyTabInline):
    model = SlicedFileThumbnail
    fields = ["show_image", "width", "height", "source_format", "plate_index", "role"]

    @display(description=_("image"))
    def show_image(self, obj):
        return format_html('<img src="{}" alt="" style="max-height:96px">', obj.image.url)


CRITICAL_FIELDS = [
    ("estimated_time_s", _("Print time")),
    ("layer_height", _("Layer height (mm)")),
    ("first_layer_height", _("First layer (mm)")),
    ("nozzle_diameter", _("Nozzle (mm)")),
    ("nozzle_temperature", _("Nozzle (°C)")),
    ("nozzle_temperature_initial_layer", _("Nozzle, first layer (°C)")),
    ("bed_temperature", _("Bed (°C)")),
    ("bed_temperature_initial_layer", _("Bed, first layer (°C)")),
    ("printer_model", _("Printer")),
    ("slicer", _("Slicer")),
    ("filament_used_g_total", _("Filament total (g)")),
]


def _slot(values, index):
    return values[index] if isinstance(values, list) and index < len(values) else None


def render_summary(sliced_file: SlicedFile):
    """The values an operator checks before printing, with one row per filament slot."""
    meta = sliced_file.effective_metadata
    rows = []
    for key, label in CRITICAL_FIELDS:
        value = meta.get(key)
        if key == "estimated_time_s":
            value = duration_text(value)
        elif isinstance(value, list):
            value = ", ".join("—" if v is None else str(v) for v in value)
        if key == "slicer" and meta.get("slicer_version"):
            value = f"{value} {meta['slicer_version']}"
        corrected = " ✎" if key in sliced_file.corrections else ""
        rows.append((label, value if value not in (None, "") else "—", corrected))
    table = format_html_join("", "<tr><th style='text-align:left;padding-right:1rem'>{}</th><td>{}{}</td></tr>", rows)
    types, colours, grams = meta.get("filament_type"), meta.get("filament_colour"), meta.get("filament_used_g")
    slots = max((len(v) for v in (types, colours, grams) if isinstance(v, list)), default=0)
    filaments = format_html_join(
        "", "<tr data-slot='{}'><td style='padding-right:.75rem'>{}</td><td>{}</td><td style='padding:0 .75rem'>{}</td>"
            "<td style='text-align:right'>{}</td></tr>",
        (
            (n + 1, n + 1, colour_swatches([_slot(colours, n) or ""]), _slot(types, n) or "—",
             "—" if _slot(grams, n) is None else f"{_slot(grams, n)} g")
            for n in range(slots)
        ),
    )
    return format_html(
        "<table>{}</table><h3 style='margin:1rem 0 .25rem;font-weight:600'>{}</h3><table>{}</table>",
        table, _("Filament per slot"), filaments,
    )


def render_config(sliced_file: SlicedFile):
    rows = format_html_join(
        "", "<tr data-key='{}'><td style='padding-right:1rem'><code>{}</code></td><td><code>{}</code></td></tr>",
        ((k.lower(), k, v) for k, v in sorted(sliced_file.config.items())),
    )
    return format_html(
        "<input type='search' placeholder='{}' style='margin-bottom:.5rem' class='border rounded px-2 py-1' "
        "oninput=\"const q=this.value.toLowerCase();this.nextElementSibling.querySelectorAll('tr')"
        ".forEach(r=>r.style.display=r.dataset.key.includes(q)?'':'none')\">"
        "<table>{}</table><p>{}</p>",
        _("Filter settings…"), rows,
        ngettext("%(n)s setting", "%(n)s settings", len(sliced_file.config)) % {"n": len(sliced_file.config)},
    )


@admin.register(SlicedFile)
class SlicedFileAdmin(ModelAdmin):
    list_display = ["original_name", "format", "show_status", "show_time", "show_colours", "size_bytes",
                    "created_at"]
    list_filter = ["status", "format", "sliced"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = ["show_summary", "original_name", "sha256", "size_bytes", "format", "status", "error",
                       "sliced", "metadata", "plates", "extra", "warnings", "show_config", "extracted_at",
                       "uploaded_by", "file"]
    fieldsets = [
        (None, {"fields": ["show_summary", "original_name", "file", "format", "status", "error", "warnings"]}),
        (_("Corrections"), {"classes": ["tab"], "fields": ["corrections"]}),
        (_("Extracted metadata"), {"classes": ["tab"], "fields": ["metadata", "plates", "extra"]}),
        (_("Slicer configuration"), {"classes": ["tab"], "fields": ["show_config"]}),
        (_("File"), {"classes": ["tab"], "fields": ["sha256", "size_bytes", "sliced", "extracted_at",
                                                     "uploaded_by"]}),
    ]
    inlines = [ThumbnailInline]
    actions = ["reread"]

    def has_add_permission(self, request):
        return False  # files arrive by uploading them to a variant

    @display(description=_("metadata"), label=EXTRACTION_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("print time"))
    def show_time(self, obj):
        return duration_text(obj.effective_metadata.get("estimated_time_s"))

    @display(description=_("colours"))
    def show_colours(self, obj):
        return colour_swatches(obj.effective_metadata.get("filament_colour") or [])

    @display(description=_("at a glance"))
    def show_summary(self, obj):
        return render_summary(obj)

    @display(description=_("configuration"))
    def show_config(self, obj):
        return render_config(obj)

    @action(description=_("Read metadata again"))
    def reread(self, request, queryset):
        results = [services.sliced_file_reread(sliced_file=sliced_file) for sliced_file in queryset]
        failed = [r for r in results if r.status == ExtractionStatus.FAILED]
        for sliced_file in failed:
            messages.error(request, f"{sliced_file.original_name}: {sliced_file.error}")
        if len(results) > len(failed):
            messages.success(request, _("Metadata read again."))

    def save_model(self, request, obj, form, change):
        services.sliced_file_correct(sliced_file=obj, corrections=form.cleaned_data.get("corrections") or {},
                                     by=request.user)


@admin.register(VariantVersion)
class VariantVersionAdmin(ModelAdmin):
    list_display = ["variant", "number", "sliced_file", "created_by", "created_at"]
    search_fields = ["variant__sku", "variant__name", "variant__model__name"]
    readonly_fields = ["variant", "number", "sliced_file", "created_by", "created_at", "show_summary",
                       "show_thumbnail", "show_config", "show_panels"]
    fieldsets = [
        (None, {"fields": ["show_summary", "show_panels", "show_thumbnail", "variant", "number", "sliced_file",
                           "change_note", "created_by", "created_at"]}),
        (_("Slicer configuration"), {"classes": ["tab"], "fields": ["show_config"]}),
    ]

    actions_detail = ["open_make_current"]

    @action(description=_("Make this version current"), icon="history", url_path="open-make-current")
    def open_make_current(self, request, object_id):
        version = self.get_object(request, str(object_id))
        if version is None:
            raise Http404(_("No such version."))
        url = reverse("admin:catalog_modelvariant_set_current", args=[version.variant_id])
        return redirect(f"{url}?version={version.pk}")

    def save_model(self, request, obj, form, change):
        services.version_update(version=obj, change_note=obj.change_note)

    @display(description=_("for this file"))
    def show_panels(self, obj):
        from catalog.panels import version_panels

        parts = [(title, render(obj.sliced_file)) for title, render in version_panels()]
        if not parts:
            return "—"
        return format_html_join("", "<h3 style='font-weight:600;margin:.25rem 0'>{}</h3>{}", parts)

    @display(description=_("at a glance"))
    def show_summary(self, obj):
        return render_summary(obj.sliced_file)

    @display(description=_("picture"))
    def show_thumbnail(self, obj):
        thumbnail = obj.sliced_file.thumbnails.order_by("-width").first()
        if thumbnail is None:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:160px">', thumbnail.image.url)

    @display(description=_("configuration"))
    def show_config(self, obj):
        return render_config(obj.sliced_file)

    def has_add_permission(self, request):
        return False
