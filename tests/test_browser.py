"""Browser tests: the customer portal and the admin, driven through the system's Chromium.

They run against pytest-django's `live_server` (a real HTTP server in a thread, with a
transactional database) and Playwright's sync API. Chromium is Debian's
(/usr/bin/chromium); Playwright never downloads a browser here. A missing Chromium
is a failure, not a skip: CI installs it.

Screenshots land in var/screenshots/<name>.png for a human to look at.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core import mail

from fablab.tests.helpers import corpus_path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
TIMEOUT_MS = 15_000

PASSWORD = "Printing-Farm-2026!"
ORGANIZATION = "Bench Prints"
DOMAIN_TITLES = ["Catalog", "Inventory", "Production", "Printers", "Reconstruction", "Billing"]
CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/accounts/confirm-email/[^/\s\"'<>]+/")

pytestmark = pytest.mark.django_db(transaction=True)


# --- fixtures -----------------------------------------------------------------------


@contextmanager
def launch_chromium(monkeypatch, args: list[str] = CHROMIUM_ARGS) -> Iterator:
    """The system's Chromium, headless, through Playwright's sync API (a missing Chromium fails the test)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's Chromium "
            "(apt-get install chromium). Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    # Playwright's sync API keeps an asyncio loop in this thread; the test's own ORM calls
    # (creating users, checking rows) would otherwise be refused as "async unsafe".
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(monkeypatch) -> Iterator:
    with launch_chromium(monkeypatch) as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_until(page, expression: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Poll a JavaScript expression until it is true. Playwright's own wait_for_function compiles its
    predicate with `new Function`, which the Content-Security-Policy refuses outside the admin."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(f"Boolean({expression})"):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {expression}")


def sign_up(page, base_url: str, *, email: str, organization: str = ORGANIZATION, shot: str | None = None) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/accounts/signup/")
    form = page.locator("form").filter(has=page.locator("input[name=password1]"))
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password1]").fill(PASSWORD)
    form.locator("input[name=password2]").fill(PASSWORD)
    form.locator("input[name=organization_name]").fill(organization)
    if shot:
        screenshot(page, shot)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    expect(page.locator("main")).to_contain_text("sent", ignore_case=True)


def log_in(page, base_url: str, *, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    form = page.locator("form").filter(has=page.locator("input[name=password]"))
    form.locator("input[name=login]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def confirmation_link_for(email: str) -> str:
    messages = [m for m in mail.outbox if email in m.to]
    assert messages, f"no e-mail was sent to {email}; outbox: {[m.to for m in mail.outbox]}"
    body = messages[-1].body
    match = CONFIRM_LINK.search(body)
    assert match, f"no confirmation link in the e-mail body:\n{body}"
    return match.group(0)


# --- portal -------------------------------------------------------------------------


@pytest.mark.browser
def test_signup_verify_and_log_in_shows_the_organization(live_server, page, mailoutbox):
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from fablab.choices import MembershipRole
    from fablab.models import Membership, Organization

    email = "maker@bench-prints.example"
    sign_up(page, live_server.url, email=email, shot="signup")
    expect(page.locator("main")).to_contain_text(email)
    screenshot(page, "verification-sent")

    link = confirmation_link_for(email)
    assert link.startswith(live_server.url), link
    page.goto(link)
    confirm = page.locator("main form button[type=submit]")
    expect(confirm).to_have_count(1)
    with page.expect_navigation():
        confirm.click()
    assert "/accounts/confirm-email/" not in page.url, f"still on the confirmation page: {page.url}"
    expect(page.locator("main")).not_to_contain_text("expired or is invalid")

    # Log in as someone who comes back later: a fresh session, e-mail and password.
    page.context.clear_cookies()
    log_in(page, live_server.url, email=email)

    expect(page.locator("[data-testid=organization-name]")).to_contain_text(ORGANIZATION)
    expect(page.locator("table").first.locator("tbody")).to_contain_text(email)
    expect(page.locator("[data-testid=logout]")).to_be_visible()
    screenshot(page, "portal-home")

    user = get_user_model().objects.get(email=email)
    assert EmailAddress.objects.filter(user=user, email=email, verified=True, primary=True).exists()
    organization = Organization.objects.get(name=ORGANIZATION)
    assert Membership.objects.filter(organization=organization, user=user, role=MembershipRole.OWNER).exists()


@pytest.mark.browser
def test_log_in_before_verifying_is_refused(live_server, page, mailoutbox):
    from allauth.account.models import EmailAddress
    from playwright.sync_api import expect

    email = "early@bench-prints.example"
    sign_up(page, live_server.url, email=email)
    assert len([m for m in mailoutbox if email in m.to]) == 1

    page.context.clear_cookies()
    log_in(page, live_server.url, email=email)

    # allauth stops at "verification sent" instead of letting the user in.
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/$"))
    expect(page.locator("[data-testid=organization-name]")).to_have_count(0)
    screenshot(page, "login-unverified")

    page.goto(live_server.url + "/")
    expect(page.locator("[data-testid=organization-name]")).to_have_count(0)
    expect(page.locator("[data-testid=logout]")).to_have_count(0)
    expect(page.locator("header").get_by_role("link", name="Log in")).to_be_visible()

    assert not EmailAddress.objects.filter(email=email, verified=True).exists()


@pytest.mark.browser
def test_language_switch_sets_html_lang(live_server, page):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    screenshot(page, "landing")

    page.locator("select#language").select_option("de")  # submits itself on change
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("select#language")).to_have_value("de")
    screenshot(page, "landing-de")


# --- admin --------------------------------------------------------------------------


def admin_log_in(page) -> None:
    form = page.locator("form#login-form")
    form.locator("input[name=username]").fill("boss")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


@pytest.fixture
def boss(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(username="boss", email="boss@example.com", password=PASSWORD)


@pytest.mark.browser
def test_admin_login_dashboard_and_organizations(live_server, page, boss):
    from playwright.sync_api import expect

    # The usual way in: /admin/ sends an anonymous visitor to the log-in page and back.
    page.goto(live_server.url + "/admin/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/$"))
    admin_log_in(page)
    page.wait_for_url(re.compile(r"/admin/$"))

    dashboard = page.locator("#fablab-dashboard")
    expect(dashboard).to_be_visible()
    expect(dashboard).to_contain_text("Customers and partners")
    for title in DOMAIN_TITLES:
        expect(dashboard).to_contain_text(title)
    expect(dashboard).to_contain_text("Background tasks")
    page.wait_for_load_state("networkidle")
    screenshot(page, "admin-dashboard", full_page=True)

    # The link's accessible name starts with its icon's ligature ("corporate_fare Organizations").
    sidebar_link = page.get_by_role("navigation").get_by_role("link", name=re.compile(r"(^|\s)Organizations$"))
    expect(sidebar_link.first).to_be_visible()
    sidebar_link.first.click()
    page.wait_for_url(re.compile(r"/admin/fablab/organization/$"))
    expect(page).to_have_title(re.compile(r"^\s*Select organization to change \| fablab\s*$"))
    screenshot(page, "admin-organizations")


@pytest.mark.browser
def test_admin_login_page_opened_directly_leads_to_the_dashboard(live_server, page, boss):
    """Staff who bookmark /admin/login/ must land in the admin, not on the customer portal."""
    from playwright.sync_api import expect

    page.goto(live_server.url + "/admin/login/")
    with page.expect_navigation():
        admin_log_in(page)
    screenshot(page, "admin-login-direct")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#fablab-dashboard")).to_be_visible()


@pytest.mark.browser
def test_admin_uploads_several_sliced_files_with_progress(live_server, page, boss):
    """Staff choose two real sliced files on a variant's upload page; each becomes a version."""
    from playwright.sync_api import expect

    from catalog.models import VariantVersion
    from catalog.services import model_create, variant_create

    variant = variant_create(model=model_create(name="Mini Cube"), name="Orange", sku="CUBE-OR")
    corpus = corpus_path("slicer")
    files = [corpus / "prusaslicer-2.8.1_mk4s_minicube.bgcode",
             corpus / "bambustudio-02.04.00.70_a1mini_cube.gcode.3mf"]
    assert all(f.exists() for f in files), f"slicer corpus missing under {corpus}"

    page.goto(f"{live_server.url}/admin/catalog/modelvariant/{variant.pk}/upload/")
    admin_log_in(page)
    page.wait_for_url(re.compile(r"/upload/$"))
    page.locator("#change-note").fill("first batch")
    page.locator("#file-input").set_input_files([str(f) for f in files])
    rows = page.locator("#upload-list li")
    expect(rows).to_have_count(2)
    expect(page.locator("#upload-list li[data-result=ok]")).to_have_count(2, timeout=30_000)
    expect(rows.nth(0)).to_contain_text("Version 1")
    expect(rows.nth(1)).to_contain_text("Version 2")
    screenshot(page, "admin-variant-upload")
    versions = VariantVersion.objects.filter(variant=variant).order_by("number")
    assert [(v.number, v.change_note, v.sliced_file.format) for v in versions] == [
        (1, "first batch", "bgcode"), (2, "first batch", "3mf")]

    # The current version's file again is refused, with the reason shown next to it.
    page.locator("#file-input").set_input_files(str(files[1]))
    expect(page.locator("#upload-list li[data-result=error]")).to_have_count(1, timeout=30_000)
    expect(page.locator("#upload-list li[data-result=error]")).to_contain_text("identical to version")


@pytest.mark.browser
def test_operator_clears_a_plate_from_the_fleet_page_on_a_phone(live_server, browser, boss):
    """At a phone's width (390 px) the fleet card shows the finished job and a "Plate cleared" button one
    thumb can press; pressing it clears the plate and the card drops the button."""
    from playwright.sync_api import expect

    from printers.choices import PrinterState
    from printers.models import PrinterLiveState
    from printers.tests.factories import BambuPrinterFactory
    from production.choices import AttemptOutcome, PrintJobStatus
    from production.models import PrintAttempt, PrinterStation, PrintJob
    from production.tests.factories import PrintJobFactory

    printer = BambuPrinterFactory(name="X1 Bench", model="X1 Carbon")
    PrinterLiveState.objects.update_or_create(printer=printer, defaults={"state": PrinterState.FINISHED,
                                                                         "online": True})
    job = PrintJobFactory(copies=2)
    PrintAttempt.objects.create(job=job, number=1, printer=printer, outcome=AttemptOutcome.COMPLETED)
    PrintJob.objects.filter(pk=job.pk).update(status=PrintJobStatus.COMPLETED, printer=printer)
    PrinterStation.objects.create(printer=printer, plate_clear=False)

    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/admin/printers/printer/fleet/")
        admin_log_in(page)
        page.wait_for_url(re.compile(r"/admin/printers/printer/fleet/$"))
        card = page.locator(f'[data-printer="{printer.pk}"]')
        expect(card.locator('[data-line="plate"]')).to_contain_text(f"#{job.pk}")
        button = card.locator('[data-action="plate-cleared"] button')
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
        screenshot(page, "admin-fleet-phone-plate-to-clear", full_page=False)
        with page.expect_navigation():
            button.tap()
        page.wait_for_url(re.compile(r"/admin/printers/printer/fleet/$"))
        expect(page.locator("body")).to_contain_text("X1 Bench: plate cleared, ready for the next job.")
        expect(card.locator('[data-action="plate-cleared"]')).to_have_count(0)
        screenshot(page, "admin-fleet-phone-plate-cleared", full_page=False)
        assert PrinterStation.objects.get(printer=printer).plate_clear is True
    finally:
        context.close()


@pytest.mark.browser
def test_staff_drag_a_job_to_the_top_of_the_queue(live_server, page, boss, monkeypatch):
    """Unfold's sortable list: dragging a row by its handle and saving moves the job through print_job_move."""
    from production import services
    from production.selectors import print_job_queue
    from production.tests.factories import job

    first, second, third = job(), job(), job()
    moved = []
    original = services.print_job_move
    monkeypatch.setattr(services, "print_job_move", lambda **kw: moved.append(kw["job"].pk) or original(**kw))
    page.goto(live_server.url + "/admin/production/printjob/")
    admin_log_in(page)
    page.wait_for_url(re.compile(r"/admin/production/printjob/$"))
    handles = page.locator("#result_list td[x-sort\\:handle]")
    handles.nth(2).drag_to(handles.nth(0))
    with page.expect_navigation():
        page.locator("button[name=_save]").click()
    screenshot(page, "admin-queue-dragged")
    assert [item.pk for item in print_job_queue()] == [third.pk, first.pk, second.pk]
    assert third.pk in moved


# --- Content-Security-Policy ----------------------------------------------------------------

# Every violation is reported to the page as a `securitypolicyviolation` event and logged to the console.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


@pytest.mark.browser
def test_pages_work_under_the_content_security_policy(live_server, browser, boss, customer_owner):
    """The admin's dashboard and print queue, the portal's scans (list and the 3D viewer) and the API docs
    load and run their scripts with no CSP violation in the console or as an event."""
    from django.conf import settings
    from django.test import Client
    from playwright.sync_api import expect

    from production.tests.factories import job
    from reconstruction import services as scan_services
    from reconstruction.tests.test_portal_viewer import finish

    job(), job()
    scan = finish(scan_services.scan_job_create(organization=customer_owner.organization,
                                                user=customer_owner.user, title="Box", known_dimension_mm=60))

    def watched_page(user=None):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_WATCH)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                                  "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
        return context, page, console

    def assert_clean(page, console, where):
        page.wait_for_load_state("networkidle")
        events = page.evaluate("window.__cspViolations")
        refused = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
        assert not events and not refused, f"{where}: {events} {refused}"

    context, page, console = watched_page(boss)
    try:
        page.goto(live_server.url + "/admin/")
        expect(page.locator("#fablab-dashboard")).to_be_visible()
        assert_clean(page, console, "admin dashboard")
        page.goto(live_server.url + "/admin/production/printjob/")
        expect(page.locator("#result_list")).to_be_visible()
        page.locator("#result_list td[x-sort\\:handle]").first.hover()  # Alpine.js is running
        assert_clean(page, console, "print queue")
    finally:
        context.close()

    context, page, console = watched_page(customer_owner.user)
    try:
        page.goto(live_server.url + "/scans/")
        expect(page.locator("main")).to_contain_text("Box")
        assert_clean(page, console, "portal scans")
        page.goto(f"{live_server.url}/scans/{scan.pk}/")
        wait_until(page, "window.fablabViewer && window.fablabViewer.stats.state !== 'loading' "
                         "&& window.fablabViewer.stats.state !== 'starting'")
        assert_clean(page, console, "scan viewer")
    finally:
        context.close()

    context, page, console = watched_page()
    try:
        page.goto(live_server.url + "/api/v1/docs")
        expect(page.locator("#swagger-ui .opblock").first).to_be_visible()
        assert_clean(page, console, "API docs")
    finally:
        context.close()
