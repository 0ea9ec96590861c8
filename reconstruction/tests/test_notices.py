"""The e-mail a customer gets when a scan finishes or fails: language, link, once per ending."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.choices import MembershipRole
from fablab.models import Membership
from fablab.tests.factories import MembershipFactory
from reconstruction import pipeline, services, tasks
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob
from reconstruction.pipeline import ScanFailed
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db

REPORT = {"photos": 30, "registered_photos": 29, "size_mm": [80.0, 50.0, 48.0], "support_removed": "table",
          "stage_timings": {"features": 1.0}}


@pytest.fixture
def queued(job, settings, tmp_path):
    settings.RECONSTRUCTION_WORK_DIR = tmp_path / "work"
    settings.PORTAL_BASE_URL = "https://fab.example"
    job.title = "Bracket <v2> & co"
    job.save()
    services.scan_photo_add(job=job, upload=photo())
    ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.QUEUED)
    return job


def finishing(context):
    out = context.work_dir / "out"
    out.mkdir(parents=True)
    for name in ("mesh.stl", "mesh.3mf", "preview.png", "points.ply"):
        (out / name).write_bytes(b"result")
    context.report.update(REPORT)
    return context.report


def failing(context):
    raise ScanFailed("Only 5 of 30 photos could be placed. Take more overlapping photos.")


def run_job(job, monkeypatch, run_tasks, pipeline_run) -> None:
    monkeypatch.setattr(pipeline, "run", pipeline_run)
    with run_tasks():
        services.scan_job_run(job_id=job.pk)


def test_a_finished_scan_tells_its_owner_in_english_with_the_link(queued, monkeypatch, run_tasks, mailoutbox):
    run_job(queued, monkeypatch, run_tasks, finishing)
    [mail] = mailoutbox
    assert mail.to == [queued.created_by.email]
    assert mail.subject == '[fablab] Your scan "Bracket <v2> & co" is ready'
    link = f"https://fab.example/scans/{queued.pk}/"
    assert link in mail.body and "80.0 × 50.0 × 48.0 mm" in mail.body and "29 of 30 photos" in mail.body
    assert "The table it stood on was cut away." in mail.body
    assert "Bracket <v2> & co" in mail.body  # plain text is not HTML-escaped
    html, kind = mail.alternatives[0]
    assert kind == "text/html" and f'href="{link}"' in html
    assert "Bracket &lt;v2&gt; &amp; co" in html and "<v2>" not in html  # the HTML part is escaped
    queued.refresh_from_db()
    assert queued.status == ScanStatus.SUCCEEDED and queued.notified_at is not None


def test_a_failed_scan_says_so_with_the_reason_in_german(queued, monkeypatch, run_tasks, mailoutbox, settings):
    settings.LANGUAGE_CODE = "de"
    run_job(queued, monkeypatch, run_tasks, failing)
    [mail] = mailoutbox
    assert mail.subject == "[fablab] Ihr Scan „Bracket <v2> & co“ ist fehlgeschlagen"
    assert "ist fehlgeschlagen, es wurde kein Modell erstellt" in mail.body
    assert "Only 5 of 30 photos could be placed" in mail.body
    assert f"https://fab.example/scans/{queued.pk}/" in mail.body
    assert 'lang="de"' in mail.alternatives[0][0]


def test_a_scan_started_in_german_is_told_in_german_on_an_english_site(job, settings, monkeypatch, run_tasks, tmp_path,
                                                                     mailoutbox, django_capture_on_commit_callbacks):
    from django.utils import translation

    settings.RECONSTRUCTION_WORK_DIR = tmp_path / "work"
    settings.RECONSTRUCTION_MIN_PHOTOS = 1
    services.scan_photo_add(job=job, upload=photo())
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        services.scan_job_submit(job=job)  # from the portal in German
    job.refresh_from_db()
    assert job.language == "de" and settings.LANGUAGE_CODE == "en"
    run_job(job, monkeypatch, run_tasks, finishing)
    [mail] = mailoutbox
    assert mail.subject == "[fablab] Ihr Scan „Skull“ ist fertig"


def test_a_finished_scan_in_german(queued, monkeypatch, run_tasks, mailoutbox, settings):
    settings.LANGUAGE_CODE = "de"
    run_job(queued, monkeypatch, run_tasks, finishing)
    [mail] = mailoutbox
    assert mail.subject == "[fablab] Ihr Scan „Bracket <v2> & co“ ist fertig"
    assert "Das Modell misst 80,0 × 50,0 × 48,0 mm" in mail.body and "29 von 30 Fotos" in mail.body  # German decimals
    assert "Der Tisch, auf dem es stand, wurde entfernt." in mail.body


def test_a_failed_scan_in_english(queued, monkeypatch, run_tasks, mailoutbox):
    run_job(queued, monkeypatch, run_tasks, failing)
    [mail] = mailoutbox
    assert mail.subject == '[fablab] Your scan "Bracket <v2> & co" failed'
    assert "failed, and no model was made" in mail.body and "Take more overlapping photos" in mail.body


def test_the_notice_is_sent_once_even_when_its_task_runs_twice(queued, monkeypatch, run_tasks, mailoutbox):
    run_job(queued, monkeypatch, run_tasks, finishing)
    assert tasks.send_scan_notice(queued.pk) is False
    assert tasks.send_scan_notice(queued.pk) is False
    assert len(mailoutbox) == 1


def test_a_retried_scan_that_ends_again_is_told_again(queued, monkeypatch, run_tasks, mailoutbox):
    run_job(queued, monkeypatch, run_tasks, failing)
    services.scan_job_retry(job=queued)
    run_job(queued, monkeypatch, run_tasks, finishing)
    assert [mail.subject for mail in mailoutbox] == ['[fablab] Your scan "Bracket <v2> & co" failed',
                                                     '[fablab] Your scan "Bracket <v2> & co" is ready']


def test_a_cancelled_or_running_scan_sends_nothing(queued, mailoutbox):
    assert tasks.send_scan_notice(queued.pk) is False  # queued
    services.scan_job_cancel(job=queued)
    assert tasks.send_scan_notice(queued.pk) is False  # cancelled by the customer: no e-mail
    assert tasks.send_scan_notice(999_999) is False  # deleted meanwhile
    assert mailoutbox == []


def test_a_scan_whose_worker_was_lost_is_reported_failed(job, settings, run_tasks, mailoutbox):
    settings.RECONSTRUCTION_TIME_LIMIT_SECONDS = 3600
    ScanJob.objects.filter(pk=job.pk).update(
        status=ScanStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=3600 + 3600))
    with run_tasks():
        services.scan_jobs_fail_stalled()
    [mail] = mailoutbox
    assert "failed" in mail.subject and "longer than the limit" in mail.body


def test_without_its_starter_the_owners_are_told(queued, monkeypatch, run_tasks, mailoutbox):
    Membership.objects.filter(user=queued.created_by).delete()  # the person left the organization
    owner = MembershipFactory(organization=queued.organization, role=MembershipRole.OWNER)
    MembershipFactory(organization=queued.organization, role=MembershipRole.MEMBER)
    run_job(queued, monkeypatch, run_tasks, finishing)
    [mail] = mailoutbox
    assert mail.to == [owner.user.email]


def test_with_nobody_to_tell_nothing_is_sent_and_nothing_breaks(queued, monkeypatch, run_tasks, mailoutbox):
    Membership.objects.filter(user=queued.created_by).delete()
    run_job(queued, monkeypatch, run_tasks, finishing)
    queued.refresh_from_db()
    assert mailoutbox == [] and queued.status == ScanStatus.SUCCEEDED and queued.notified_at is None
