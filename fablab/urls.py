from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from fablab.admin_site import admin_login
from fablab.api import api, not_found
from fablab.media import staff_media

urlpatterns = [
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<path>.*)$", not_found),
    # OctoPrint's upload API for slicers' "send to printer" (production/octoprint.py).
    path("api/", include("production.octoprint")),
    # Spoolman-compatible API for Moonraker and OctoPrint (inventory/spoolman.py).
    path("spoolman/", include("inventory.spoolman")),
    path("scans/", include("reconstruction.urls")),
    path("billing/", include("billing.urls")),
    # Stripe's webhooks (dj-stripe checks the signature with the endpoint's secret).
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    # Stored files: staff only, in every mode (fablab/media.py); customers and partners download theirs
    # through the views that check the organization.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", staff_media, name="media"),
    path("", include("fablab.portal_urls")),
]
