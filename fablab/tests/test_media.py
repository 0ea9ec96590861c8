"""Stored files are private in every mode: /media/... serves nobody but staff, DEBUG on or off.

Customers and partners get their files through the views that check the organization.
"""

import importlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import clear_url_caches, reverse

from catalog import services as catalog_services
from catalog.tests.factories import ModelFactory, VariantFactory, gcode_upload
from fablab.choices import ApiKeyScope, MembershipRole
from fablab.tests.factories import MembershipFactory, PartnerFactory, UserFactory, make_api_key
from fablab.tests.helpers import ApiClient
from reconstruction import services as scan_services
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob, ScanPhoto
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db

STL = b"solid mesh\nendsolid mesh\n"


def _reload_urls():
    import fablab.urls

    importlib.reload(fablab.urls)
    clear_url_caches()


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings, tmp_path):
    """The URLs as `manage.py runserver` builds them with DEBUG on (the demo) and off; MEDIA_ROOT is the
    test's storage, where a DEBUG-only static file server would look."""
    settings.DEBUG = request.param
    settings.MEDIA_ROOT = tmp_path / "media"
    _reload_urls()
    yield request.param
    settings.DEBUG = False
    _reload_urls()


@pytest.fixture
def files(customer_owner, fake_reader, monkeypatch):
    """A customer's finished scan (its mesh and a photo) and a partner's sliced file, stored where they live."""
    monkeypatch.setattr(scan_services, "_enqueue", lambda job_id: None)
    job = scan_services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                        title="Skull")
    scan_services.scan_photo_add(job=job, upload=photo("p.jpg"))
    job.mesh_stl.save("mesh.stl", ContentFile(STL), save=False)
    ScanJob.objects.filter(pk=job.pk).update(mesh_stl=job.mesh_stl.name, status=ScanStatus.SUCCEEDED)
    designer = PartnerFactory()
    variant = VariantFactory(model=ModelFactory(designer=designer))
    version = catalog_services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; mine\n"))
    return {
        "job": job, "variant": variant, "designer": designer,
        "paths": {
            "scan result": job.mesh_stl.name,
            "photo": ScanPhoto.objects.get(job=job).image.name,
            "sliced file": version.sliced_file.file.name,
        },
    }


def test_the_paths_are_the_predictable_ones_and_the_files_are_stored(files, settings):
    paths = files["paths"]
    assert paths["scan result"] == f"scans/org-{files['job'].organization_id}/{files['job'].pk}/result/mesh.stl"
    assert paths["photo"].startswith(f"scans/org-{files['job'].organization_id}/{files['job'].pk}/photos/")
    assert paths["sliced file"].startswith("catalog/")
    for name in paths.values():
        assert (Path(settings.STORAGES["default"]["OPTIONS"]["location"]) / name).is_file()


@pytest.mark.parametrize("kind", ["scan result", "photo", "sliced file"])
def test_nobody_but_staff_gets_a_stored_file_by_its_path(debug, files, client, kind):
    url = f"/media/{files['paths'][kind]}"
    assert client.get(url).status_code == 404  # anonymous

    stranger = MembershipFactory(role=MembershipRole.OWNER)  # another customer organization's owner
    client.force_login(stranger.user)
    assert client.get(url).status_code == 404

    client.force_login(MembershipFactory(organization=files["designer"], role=MembershipRole.OWNER).user)
    assert client.get(url).status_code == 404  # even the file's own partner: it downloads through the API


def test_the_owners_download_through_the_views_that_check_the_organization(debug, files, owner_client):
    job = files["job"]
    response = owner_client.get(reverse("scans:download", args=[job.pk, "stl"]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == STL
    other = MembershipFactory(role=MembershipRole.OWNER)
    owner_client.force_login(other.user)
    assert owner_client.get(reverse("scans:download", args=[job.pk, "stl"])).status_code == 404

    designer = ApiClient(make_api_key(files["designer"], scope=ApiKeyScope.READ)[1])
    url = f"/api/v1/catalog/variants/{files['variant'].pk}/versions/1/download"
    response = designer.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"G28 ; mine\n"
    stranger = ApiClient(make_api_key(PartnerFactory(), scope=ApiKeyScope.READ)[1])
    assert stranger.get(url).status_code == 404


def test_staff_see_images_inline_and_every_other_file_as_a_download(debug, files, client):
    client.force_login(UserFactory(is_staff=True))
    image = client.get(f"/media/{files['paths']['photo']}")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert image["X-Content-Type-Options"] == "nosniff" and "sandbox" in image["Content-Security-Policy"]
    mesh = client.get(f"/media/{files['paths']['scan result']}")
    assert mesh.status_code == 200 and b"".join(mesh.streaming_content) == STL
    assert mesh["Content-Type"] == "application/octet-stream"
    assert mesh["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("name", ["../settings.py", "scans/../../x", "scans", "scans/org-1/nothing.stl", "%2e%2e/x"])
def test_staff_get_404_for_folders_missing_files_and_paths_out_of_the_storage(files, client, name):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(f"/media/{name}").status_code == 404


def test_an_inactive_staff_user_gets_nothing(files, client):
    client.force_login(UserFactory(is_staff=True, is_active=False))
    assert client.get(f"/media/{files['paths']['photo']}").status_code == 404
