"""The catalog's upload, dedupe and version flow (the reader is substituted; see test_slicer_*)."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from catalog import services
from catalog.choices import ExtractionStatus
from catalog.models import Model, ModelVariant, SlicedFile, SlicedFileThumbnail, VariantVersion
from catalog.tests.factories import FakeInfo, ModelFactory, VariantFactory, gcode_upload, metadata
from fablab.exceptions import Conflict, InvalidInput, PermissionDenied
from fablab.tests.factories import OrganizationFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def stored_files() -> list[str]:
    root = Path(default_storage.location)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


class TestUpload:
    def test_first_upload_becomes_version_one_with_metadata(self, fake_reader):
        variant = VariantFactory()
        version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(), change_note=" first ")
        variant.refresh_from_db()
        assert version.number == 1 and version.change_note == "first"
        assert variant.current_version == version
        sliced = version.sliced_file
        assert sliced.status == ExtractionStatus.DONE
        assert sliced.metadata["estimated_time_s"] == 3600
        assert len(sliced.sha256) == 64 and sliced.size_bytes == len(gcode_upload().read())
        assert sliced.file.name.startswith(f"catalog/lab/sliced/{sliced.sha256[:2]}/{sliced.sha256}/")
        assert SlicedFileThumbnail.objects.get(sliced_file=sliced).image.read().startswith(b"\x89PNG")
        # The variant carries the key metadata for search and filters.
        assert variant.printer_model == "MK4S"
        assert variant.filament_types == "PETG"
        assert variant.filament_colours == "#FF8000"
        assert variant.layer_height == Decimal("0.200")
        assert variant.nozzle_diameter == Decimal("0.40")
        assert variant.estimated_time_s == 3600
        assert variant.filament_used_g == Decimal("12.50")

    def test_new_file_makes_a_new_version_and_old_ones_stay(self, fake_reader):
        variant = VariantFactory()
        first = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28\n"))
        fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=1800))
        second = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28\nG1 X1\n"))
        variant.refresh_from_db()
        assert [v.number for v in variant.versions.order_by("number")] == [1, 2]
        assert variant.current_version == second
        assert variant.estimated_time_s == 1800
        assert first.sliced_file.file.read() == b"G28\n"

    def test_same_bytes_again_are_recognised(self, fake_reader):
        variant = VariantFactory()
        services.variant_upload_sliced_file(variant=variant, upload=gcode_upload())
        with pytest.raises(Conflict, match="identical to version 1"):
            services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(name="renamed.gcode"))
        other = VariantFactory()
        reused = services.variant_upload_sliced_file(variant=other, upload=gcode_upload(name="copy.gcode"))
        assert SlicedFile.objects.count() == 1
        assert reused.sliced_file.original_name == "part.gcode"
        assert fake_reader.calls == 1  # read once, stored once
        assert len([f for f in stored_files() if "/sliced/" in f]) == 1

    def test_older_version_can_become_current_again(self, fake_reader):
        variant = VariantFactory()
        first = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28\n"))
        services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28\nG1\n"))
        services.variant_set_current_version(variant=variant, version=first)
        variant.refresh_from_db()
        assert variant.current_version == first
        with pytest.raises(InvalidInput):
            services.variant_set_current_version(variant=VariantFactory(), version=first)

    def test_partner_files_are_stored_under_the_partner(self, fake_reader):
        partner = PartnerFactory()
        variant = VariantFactory(model=ModelFactory(designer=partner))
        version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload())
        assert version.sliced_file.file.name.startswith(f"catalog/org-{partner.pk}/sliced/")


class TestRefusedUploadsLeaveNothing:
    @pytest.mark.parametrize("name,body,message", [
        ("part.exe", b"G28\n", "not a file the catalog accepts"),
        ("part", b"G28\n", "not a file the catalog accepts"),
        ("empty.gcode", b"", "is empty"),
    ])
    def test_by_name_and_size(self, fake_reader, name, body, message):
        variant = VariantFactory()
        with pytest.raises(InvalidInput, match=message):
            services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(name=name, body=body))
        assert not SlicedFile.objects.exists() and not VariantVersion.objects.exists()
        assert stored_files() == []

    def test_too_large(self, fake_reader, settings):
        settings.CATALOG_MAX_UPLOAD_BYTES = 10
        with pytest.raises(InvalidInput, match="the limit is"):
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload())
        assert stored_files() == []

    @pytest.mark.parametrize(("limit", "size", "message"), [
        (200 << 20, (200 << 20) + 1, "big.gcode is 200.1 MiB; the limit is 200 MiB."),
        (1 << 20, 3 << 19, "big.gcode is 1.5 MiB; the limit is 1 MiB."),
    ])
    def test_too_large_says_the_sizes_in_the_limits_unit(self, fake_reader, settings, limit, size, message):
        """CATALOG_MAX_UPLOAD_MB is MiB: 200 of them are 200 MiB, never '210 MB'."""
        settings.CATALOG_MAX_UPLOAD_BYTES = limit
        upload = gcode_upload(name="big.gcode", body=b"G28\n")
        upload.size = size  # the check reads the size the upload declares; no need to send 200 MiB
        with pytest.raises(InvalidInput) as refused:
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=upload)
        assert refused.value.message == message
        assert stored_files() == []

    def test_content_that_contradicts_the_name(self, fake_reader):
        fake_reader.detected = "3mf"
        with pytest.raises(InvalidInput, match="contains 3MF"):
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload(name="x.gcode"))
        assert not SlicedFile.objects.exists() and stored_files() == []

    def test_unreadable_file(self, fake_reader):
        from catalog.slicer import CorruptFile

        fake_reader.error = CorruptFile("x.gcode is damaged: the file ends in the middle of a block.")
        with pytest.raises(CorruptFile):
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload())
        assert not SlicedFile.objects.exists() and stored_files() == []

    def test_failure_after_storing_removes_the_stored_files(self, fake_reader, monkeypatch):
        def explode(**kwargs):
            raise RuntimeError("database went away")

        monkeypatch.setattr(services, "variant_refresh_search", explode)
        with pytest.raises(RuntimeError):
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload())
        assert stored_files() == []


    def test_a_nul_in_the_change_note_leaves_no_file_and_no_folder(self, fake_reader):
        with pytest.raises(InvalidInput, match="change_note: Null characters are not allowed"):
            services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload(),
                                                change_note="first\x00")
        assert not SlicedFile.objects.exists() and not VariantVersion.objects.exists()
        root = Path(default_storage.location)
        assert not root.exists() or list(root.rglob("*")) == []


class TestLargeFilesAreReadInTheBackground:
    def test_task_reads_later_and_is_safe_to_repeat(self, fake_reader, settings, django_capture_on_commit_callbacks,
                                                     monkeypatch):
        settings.CATALOG_SYNC_READ_BYTES = 10
        queued = []
        monkeypatch.setattr(services, "_enqueue_extraction", queued.append)
        variant = VariantFactory()
        with django_capture_on_commit_callbacks(execute=True):
            version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload())
        sliced = version.sliced_file
        assert sliced.status == ExtractionStatus.PENDING and fake_reader.calls == 0
        assert queued == [sliced.pk]

        from catalog.tasks import extract_sliced_file

        assert extract_sliced_file(sliced.pk) == ExtractionStatus.DONE
        assert extract_sliced_file(sliced.pk) == ExtractionStatus.DONE
        assert fake_reader.calls == 1
        variant.refresh_from_db()
        assert variant.estimated_time_s == 3600
        assert extract_sliced_file(999999) == "gone"

    def test_a_failed_read_is_shown_and_can_be_retried(self, fake_reader, settings, monkeypatch):
        from catalog.slicer import CorruptFile

        settings.CATALOG_SYNC_READ_BYTES = 10
        monkeypatch.setattr(services, "_enqueue_extraction", lambda pk: None)
        version = services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload())
        fake_reader.error = CorruptFile("part.gcode is damaged.")
        sliced = services.sliced_file_extract(sliced_file=version.sliced_file)
        assert sliced.status == ExtractionStatus.FAILED and sliced.error == "part.gcode is damaged."
        fake_reader.error = None
        assert services.sliced_file_reread(sliced_file=sliced).status == ExtractionStatus.DONE


class TestCorrections:
    def test_corrections_win_but_extracted_values_stay(self, fake_reader):
        variant = VariantFactory()
        version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload())
        sliced = services.sliced_file_correct(sliced_file=version.sliced_file, corrections={"printer_model": "MK4"})
        assert sliced.metadata["printer_model"] == "MK4S"
        assert sliced.effective_metadata["printer_model"] == "MK4"
        variant.refresh_from_db()
        assert variant.printer_model == "MK4"
        with pytest.raises(InvalidInput, match="Unknown metadata fields: colour_of_sky"):
            services.sliced_file_correct(sliced_file=sliced, corrections={"colour_of_sky": "blue"})


class TestModels:
    def test_designer_must_be_a_partner(self):
        with pytest.raises(InvalidInput):
            services.model_create(name="Vase", designer=OrganizationFactory())

    def test_tags_are_shared_case_insensitively(self):
        first = services.model_create(name="A", tags=["Desk", " organiser "])
        second = services.model_create(name="B", tags=["desk"])
        assert set(first.tags.values_list("name", flat=True)) == {"Desk", "organiser"}
        assert list(second.tags.values_list("name", flat=True)) == ["Desk"]

    def test_sku_is_unique_ignoring_case(self):
        model = services.model_create(name="A")
        services.variant_create(model=model, name="Red", sku="ABC-1")
        with pytest.raises(Conflict):
            services.variant_create(model=model, name="Blue", sku="abc-1")
        with pytest.raises(InvalidInput):
            services.variant_create(model=model, name="Blue", sku="has space")


    def test_updating_keeps_the_sku_rule_and_refreshes_search(self):
        model = services.model_create(name="Desk organiser", tags=["Office"])
        oak = services.variant_create(model=model, name="Oak", sku="DO-OAK")
        pine = services.variant_create(model=model, name="Pine", sku="DO-PINE")
        with pytest.raises(Conflict):
            services.variant_update(variant=pine, model=model, name="Pine", sku="do-oak", colour="", material="",
                                    size="")
        assert ModelVariant.objects.get(pk=pine.pk).sku == "DO-PINE"
        services.model_update(model=model, name="Pen holder", designer=None, category=None, tags=["Desk"],
                              description="", licence=model.licence, shared_with_partners=False)
        oak.refresh_from_db()
        assert "Pen holder" in oak.search_document and "Desk" in oak.search_document
        assert "organiser" not in oak.search_document and "Office" not in oak.search_document
        with pytest.raises(InvalidInput):
            services.model_update(model=model, name=" ", designer=None, category=None, tags=[], description="",
                                  licence=model.licence, shared_with_partners=False)
        assert Model.objects.get(pk=model.pk).name == "Pen holder"

    def test_a_partner_chooses_the_current_version_of_its_own_designs_only(self, fake_reader):
        designer, other = PartnerFactory(), PartnerFactory()
        variant = VariantFactory(model=ModelFactory(designer=designer, shared_with_partners=True))
        first = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; 1\n"))
        second = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; 2\n"))
        with pytest.raises(PermissionDenied, match="only its designer"):
            services.variant_set_current_version_by_designer(variant=variant, organization=other, version=first)
        other_version = services.variant_upload_sliced_file(variant=VariantFactory(),
                                                            upload=gcode_upload(body=b"G28 ; x\n"))
        with pytest.raises(InvalidInput, match="belongs to another variant"):
            services.variant_set_current_version_by_designer(variant=variant, organization=designer,
                                                             version=other_version)
        assert ModelVariant.objects.get(pk=variant.pk).current_version == second
        services.variant_set_current_version_by_designer(variant=variant, organization=designer, version=first)
        assert ModelVariant.objects.get(pk=variant.pk).current_version == first


class TestPartnerUploads:
    def test_only_the_designer_adds_versions(self, fake_reader):
        designer, other = PartnerFactory(), PartnerFactory()
        variant = VariantFactory(model=ModelFactory(designer=designer, shared_with_partners=True))
        from fablab.exceptions import PermissionDenied

        with pytest.raises(PermissionDenied, match="only its designer"):
            services.variant_upload_by_designer(variant=variant, organization=other, upload=gcode_upload())
        assert not VariantVersion.objects.exists()
        version = services.variant_upload_by_designer(variant=variant, organization=designer, upload=gcode_upload())
        assert version.number == 1
