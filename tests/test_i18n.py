"""The portal speaks German: the catalogue is complete, compiled, and actually used."""

import ast
import gettext
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils import translation

from fablab import services
from fablab.choices import MembershipRole
from fablab.models import Invitation
from fablab.tests.factories import OrganizationFactory

BASE_DIR = Path(settings.BASE_DIR)
PO_FILE = BASE_DIR / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")
GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en"}


# --- A small .po reader (no polib) --------------------------------------------------


def _unquote(line: str) -> str:
    return ast.literal_eval(line.strip())


def read_po(path: Path) -> list[dict]:
    """The active entries of a .po file: msgid, msgid_plural, msgstr (or msgstr[n]), flags, references.

    Obsolete entries (`#~`) are left out.
    """
    entries: list[dict] = []
    entry: dict | None = None
    field: str | None = None

    def start():
        nonlocal entry
        entry = {"flags": set(), "references": [], "msgstr": {}}
        entries.append(entry)

    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#~"):
            field = None
            continue
        if line.startswith("#"):
            if entry is None or "msgid" in entry:
                start()
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#:"):
                entry["references"].extend(line[2:].split())
            continue
        keyword, _space, rest = line.partition(" ")
        if keyword == "msgctxt":
            if entry is None or "msgid" in entry:
                start()
            entry["msgctxt"] = _unquote(rest)
            field = "msgctxt"
        elif keyword == "msgid":
            if entry is None or "msgid" in entry:
                start()
            entry["msgid"] = _unquote(rest)
            field = "msgid"
        elif keyword == "msgid_plural":
            entry["msgid_plural"] = _unquote(rest)
            field = "msgid_plural"
        elif keyword == "msgstr":
            entry["msgstr"][0] = _unquote(rest)
            field = 0
        elif keyword.startswith("msgstr["):
            field = int(keyword[len("msgstr["):-1])
            entry["msgstr"][field] = _unquote(rest)
        elif line.startswith('"'):
            if field in ("msgctxt", "msgid", "msgid_plural"):
                entry[field] += _unquote(line)
            else:
                entry["msgstr"][field] += _unquote(line)
        else:
            raise AssertionError(f"Unexpected line in {path.name}: {raw!r}")
    return [e for e in entries if "msgid" in e]


def po_messages(path: Path = PO_FILE) -> list[dict]:
    """Every entry but the header."""
    return [e for e in read_po(path) if e["msgid"] != ""]


# --- The catalogue itself -------------------------------------------------------------


def test_catalogue_header_declares_german_utf8_and_plural_rule():
    header = next(e for e in read_po(PO_FILE) if e["msgid"] == "")
    text = header["msgstr"][0]
    assert "Language: de\n" in text
    assert "charset=UTF-8" in text
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in text
    assert "fuzzy" not in header["flags"]


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = po_messages()
    assert len(entries) > 100, "the German catalogue looks empty"
    untranslated = [
        e["msgid"] for e in entries
        if not e["msgstr"] or any(not text.strip() for text in e["msgstr"].values())
    ]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert (untranslated, fuzzy) == ([], []), (
        f"{PO_FILE.name}: untranslated {untranslated}, fuzzy {fuzzy}; translate them, drop the fuzzy flags "
        "and run compilemessages --ignore=.venv"
    )
    plural = [e["msgid"] for e in entries if "msgid_plural" in e and sorted(e["msgstr"]) != [0, 1]]
    assert plural == [], f"plural entries need msgstr[0] and msgstr[1]: {plural}"


def test_translations_keep_every_placeholder():
    placeholder = re.compile(r"%\([a-z_]+\)[sdr]|\{\{\s*\w+\s*\}\}|<[^>]+>")
    wrong = []
    for e in po_messages():
        for form, text in e["msgstr"].items():
            # The singular form mirrors msgid; plural forms mirror msgid_plural.
            source = e["msgid"] if form == 0 or "msgid_plural" not in e else e["msgid_plural"]
            if sorted(placeholder.findall(source)) != sorted(placeholder.findall(text)):
                wrong.append((source, text))
    assert wrong == []


def test_catalogue_holds_only_the_projects_own_strings():
    """makemessages must not have walked into the virtualenv or other vendored code."""
    references = [ref for e in po_messages() for ref in e["references"]]
    assert references
    foreign = [
        ref for ref in references
        if ".venv" in ref or "site-packages" in ref or ref.startswith(("var/", "node_modules/"))
    ]
    assert foreign == []
    for ref in references:
        assert (BASE_DIR / ref.rsplit(":", 1)[0]).is_file(), ref


def test_compiled_catalogue_matches_the_po_file():
    """django.mo is committed (msgfmt may be missing where the app runs) and must not be stale."""
    assert MO_FILE.is_file(), "run: manage.py compilemessages --ignore=.venv"
    with MO_FILE.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)._catalog
    stale = []
    for e in po_messages():
        # gettext stores a message with a context under "context\x04message".
        key = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]
        if "msgid_plural" in e:
            for n, text in e["msgstr"].items():
                if compiled.get((key, n)) != text:
                    stale.append(e["msgid"])
        elif compiled.get(key) != e["msgstr"][0]:
            stale.append(e["msgid"])
    assert stale == [], f"django.mo is out of date, run compilemessages: {stale}"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext tools are not installed")
def test_catalogue_covers_every_marked_string(tmp_path, monkeypatch, settings):
    """A string marked for translation in the code or templates but missing from django.po fails here.

    makemessages runs on a copy of the project's sources, so the real catalogue is left alone.
    """
    skip_dirs = {".venv", "var", "node_modules", "locale", "__pycache__"}

    def ignore(directory, names):
        return [
            name for name in names
            if name in skip_dirs or name.startswith(".")
            or ((Path(directory) / name).is_file() and not name.endswith((".py", ".html", ".txt")))
        ]

    copy = tmp_path / "src"
    shutil.copytree(BASE_DIR, copy, ignore=ignore)
    (copy / "locale").mkdir()
    settings.LOCALE_PATHS = [copy / "locale"]
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["de"], verbosity=0)

    fresh = po_messages(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")
    extracted = {(e.get("msgctxt"), e["msgid"]) for e in fresh}
    catalogued = {(e.get("msgctxt"), e["msgid"]) for e in po_messages()}
    missing = sorted(extracted - catalogued)
    assert missing == [], (
        "strings not yet in the German catalogue; run makemessages -l de --ignore=.venv --ignore=var "
        f"--ignore=node_modules, translate them and compilemessages: {missing}"
    )


# --- The catalogue in use --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("headers", "language", "shown", "not_shown"), [
    (GERMAN, "de", ["Ihr Partner für 3D-Druck", "Konto erstellen", "Anmelden", "Registrieren"],
     ["Your 3D printing partner", "Create an account"]),
    (ENGLISH, "en", ["Your 3D printing partner", "Create an account"], ["Ihr Partner für 3D-Druck", "Konto erstellen"]),
], ids=["german", "english"])
def test_landing_page_in_the_asked_language(client, headers, language, shown, not_shown):
    response = client.get("/", **headers)
    assert response.status_code == 200
    assert response["Content-Language"] == language
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    for text in shown:
        assert text in html
    for text in not_shown:
        assert text not in html


@pytest.mark.django_db
def test_portal_home_in_german_by_header(owner_client):
    html = owner_client.get("/", **GERMAN).content.decode()
    assert "<h2>Mitglieder</h2>" in html
    assert "<h2>Mitglied einladen</h2>" in html
    assert "Einladung senden" in html
    assert "<h2>API-Schlüssel</h2>" in html
    assert "Ihre Rolle: Inhaber" in html
    assert "Abmelden" in html
    assert "Invite a member" not in html


@pytest.mark.django_db
def test_portal_home_in_german_by_cookie(owner_client):
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    html = owner_client.get("/", **ENGLISH).content.decode()
    assert "<h2>Mitglieder</h2>" in html
    assert "<h2>Mitglied einladen</h2>" in html


@pytest.mark.django_db
def test_language_switcher_sets_german(owner_client):
    response = owner_client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    assert response.status_code == 302
    assert owner_client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    html = owner_client.get("/").content.decode()
    assert "<h2>Mitglieder</h2>" in html
    owner_client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = owner_client.get("/").content.decode()
    assert "<h2>Members</h2>" in html
    assert "<h2>Invite a member</h2>" in html


@pytest.mark.django_db
def test_portal_messages_in_german(owner_client, customer_owner):
    response = owner_client.post(
        "/invitations/", {"email": "neu@example.com", "role": MembershipRole.MEMBER}, follow=True, **GERMAN
    )
    html = response.content.decode()
    assert "Einladung an neu@example.com gesendet." in html
    assert "Offene Einladungen" in html
    assert "gültig bis" in html


@pytest.mark.django_db
def test_invitation_email_templates_in_german(customer_owner):
    organization = OrganizationFactory(name="Werkstatt Nord")
    invitation = Invitation(
        organization=organization, email="neu@example.com", role=MembershipRole.MEMBER,
        invited_by=customer_owner.user, expires_at=customer_owner.created_at,
    )
    context = {"organization": organization, "invitation": invitation, "accept_url": "https://fab.example/x/"}
    with translation.override("de"):
        subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
        body = render_to_string("portal/email/invitation_message.txt", context)
    assert subject == "Sie wurden zu Werkstatt Nord eingeladen"
    assert body.startswith("Hallo,")
    assert f"{customer_owner.user.email} lädt Sie ein, Werkstatt Nord auf fablab als Mitglied beizutreten." in body
    assert "Hier können Sie die Einladung annehmen:\nhttps://fab.example/x/" in body
    assert "Der Link ist gültig bis" in body
    assert "invite" not in body.lower()

    with translation.override("en"):
        subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
    assert subject == "You are invited to join Werkstatt Nord"


@pytest.mark.django_db
def test_invitation_email_sent_in_the_inviters_language(customer_owner, mailoutbox, django_capture_on_commit_callbacks):
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(
            organization=customer_owner.organization, email="neu@example.com", role=MembershipRole.ADMIN,
            invited_by=customer_owner.user, accept_url_for=lambda token: f"https://fab.example/{token}/",
        )
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.subject == f"[fablab] Sie wurden zu {customer_owner.organization.name} eingeladen"
    assert "als Admin beizutreten" in mail.body


def test_service_errors_in_german():
    # Looked up through a name xgettext does not know, so these lines add no references to django.po.
    german = translation.gettext
    with translation.override("de"):
        assert german("This invitation has expired. Ask for a new one.") == (
            "Diese Einladung ist abgelaufen. Bitten Sie um eine neue."
        )
        assert german("Log in") == "Anmelden"
        assert german("Log out") == "Abmelden"
        assert german("API keys") == "API-Schlüssel"
