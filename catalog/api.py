"""Catalog endpoints for partners (and the lab's own systems): models, variants, versions, upload and download."""

from django.http import FileResponse, HttpRequest
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from catalog import selectors, services
from catalog.schemas import ModelDetailOut, ModelOut, VariantDetailOut, VariantFilterIn, VariantOut, VersionOut
from fablab.api_auth import partner_or_lab_read_key, partner_write_key, tenant
from fablab.api_pagination import Pagination
from fablab.exceptions import InvalidInput
from fablab.files import open_stored

# Partners and the lab's own systems read; customers' keys get 403 (fablab.api_auth.require_partner_or_lab).
# Only a design's designer, a partner, adds or chooses its versions (partner_write_key).
router = Router(tags=["catalog"], auth=partner_or_lab_read_key)


@router.get("/models", response=list[ModelOut], summary="Models this organization may see")
@paginate(Pagination)
def model_list(request: HttpRequest, q: str = ""):
    return selectors.model_list(partner=tenant(request), q=q)


@router.get("/models/{model_id}", response=ModelDetailOut, summary="A model with its variants")
def model_detail(request: HttpRequest, model_id: int):
    return selectors.model_get(model_id=model_id, partner=tenant(request))


@router.get("/variants", response=list[VariantOut], summary="Search and filter variants")
@paginate(Pagination)
def variant_list(request: HttpRequest, filters: Query[VariantFilterIn]):
    if filters.min_time_s is not None and filters.max_time_s is not None and filters.min_time_s > filters.max_time_s:
        raise InvalidInput(_("min_time_s must not be larger than max_time_s."))
    return selectors.variant_list(
        partner=tenant(request),
        filters=selectors.VariantFilter(
            q=filters.q, material=filters.material, colour=filters.colour, printer_model=filters.printer_model,
            nozzle_diameter=filters.nozzle_diameter, layer_height=filters.layer_height,
            min_time_s=filters.min_time_s, max_time_s=filters.max_time_s, designer_id=filters.designer,
            tags=filters.tag,
        ),
    )


@router.get("/variants/{variant_id}", response=VariantDetailOut, summary="A variant with its metadata and versions")
def variant_detail(request: HttpRequest, variant_id: int):
    return selectors.variant_get(variant_id=variant_id, partner=tenant(request))


@router.post(
    "/variants/{variant_id}/versions", response={201: VersionOut}, auth=partner_write_key,
    summary="Upload a sliced file as the variant's next version",
)
def version_upload(request: HttpRequest, variant_id: int, file: File[UploadedFile], change_note: Form[str] = ""):
    organization = tenant(request)
    variant = selectors.variant_get(variant_id=variant_id, partner=organization)
    version = services.variant_upload_by_designer(variant=variant, organization=organization, upload=file,
                                                  change_note=change_note)
    return Status(201, version)


@router.post(
    "/variants/{variant_id}/versions/{number}/make-current", response=VariantDetailOut, auth=partner_write_key,
    summary="Make a version (e.g. an older one) the variant's current version",
)
def version_make_current(request: HttpRequest, variant_id: int, number: int):
    organization = tenant(request)
    variant = selectors.variant_get(variant_id=variant_id, partner=organization)
    version = selectors.version_get(variant=variant, number=number)
    return services.variant_set_current_version_by_designer(variant=variant, organization=organization,
                                                             version=version)


@router.get(
    "/variants/{variant_id}/versions/{number}/download", url_name="catalog_version_download",
    summary="Download the sliced file of a version",
)
def version_download(request: HttpRequest, variant_id: int, number: int):
    variant = selectors.variant_get(variant_id=variant_id, partner=tenant(request))
    version = selectors.version_get(variant=variant, number=number)
    sliced = version.sliced_file
    return FileResponse(open_stored(sliced.file), as_attachment=True, filename=sliced.original_name)
