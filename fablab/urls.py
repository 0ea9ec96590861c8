from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path

from fablab.admin_site import admin_login
from fablab.api import api, not_found
from inventory.spoolman import keyed as spoolman_keyed
from inventory.spoolman import spoolman

urlpatterns = [
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<path>.*)$", not_found),
    # Spoolman-compatible API for Moonraker and OctoPrint (inventory/spoolman.py).
    path("spoolman/api/v1/", spoolman.urls),
    re_path(r"^spoolman/(?P<key>fl_[A-Za-z0-9]+_[A-Za-z0-9]+)/api/v1/(?P<rest>.*)$", spoolman_keyed),
    path("scans/", include("reconstruction.urls")),
    path("", include("fablab.portal_urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
