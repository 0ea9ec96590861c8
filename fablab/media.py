"""Stored files under MEDIA_URL: for staff only, in every mode.

Every stored file belongs to an organization (scans and their photos, sliced files, their thumbnails, model
images) and none is public, DEBUG or not: paths are predictable (`scans/org-3/1/result/mesh.stl`), so a
file served by its path alone would be served to anyone. Customers and partners get their files through the
views that check the organization: the portal's scan downloads (`scans:download`) and the API's
(`/api/v1/scans/{id}/download/{kind}`, `/api/v1/catalog/variants/{id}/versions/{n}/download`).

The admin shows thumbnails and model images through `FieldFile.url`: on the local disk that URL leads here,
where a signed-in staff member (who sees every organization's rows in the admin anyway) gets the file; on S3
it is a short-lived signed URL of the bucket (`AWS_QUERYSTRING_EXPIRE`). Anyone else gets 404, exactly as for
a file that does not exist.
"""

import mimetypes
from pathlib import PurePosixPath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest

# Shown in the page (the admin's <img>); every other file is a download, so a stored file is never run as a
# page of this site.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


def staff_media(request: HttpRequest, name: str) -> FileResponse:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise Http404
    try:
        handle = default_storage.open(name, "rb")
    except (SuspiciousFileOperation, OSError, ValueError):  # `../`, a folder, a file that is not there
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0]
    inline = content_type in INLINE_TYPES
    response = FileResponse(handle, as_attachment=not inline, filename=PurePosixPath(name).name,
                            content_type=content_type if inline else "application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
