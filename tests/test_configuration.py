"""Configuration comes from the environment only; production mode is strict and clean."""

import json
import secrets

import pytest

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "fablab.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://fablab.example.com",
}


def test_check_deploy_is_clean_in_production_mode(manage):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert "no issues" in result.stdout


def test_development_mode_is_flagged_by_check_deploy(manage):
    result = manage("check", "--deploy", "--fail-level", "WARNING", check=False)
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


@pytest.mark.parametrize("missing,message", [("SECRET_KEY", "SECRET_KEY must be set"),
                                             ("ALLOWED_HOSTS", "ALLOWED_HOSTS must be set")])
def test_production_mode_requires(manage, missing, message):
    env = {**PRODUCTION, missing: ""}
    result = manage("check", env=env, check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("name,value,message", [
    ("TIME_ZONE", "Mars/Olympus", "not a known IANA time zone"),
    ("DEBUG", "maybe", "DEBUG must be a boolean"),
    ("LANGUAGE_CODE", "fr", "LANGUAGE_CODE must be one of"),
    ("EMAIL_PORT", "smtp", "EMAIL_PORT must be a whole number"),
    ("PRODUCTION_VAT_PERCENT", "19,5", "PRODUCTION_VAT_PERCENT must be a number such as 19"),
    ("PRODUCTION_PRINTER_LIFETIME_HOURS", "0", "PRODUCTION_PRINTER_LIFETIME_HOURS must be a number from 100 to"),
    ("PRODUCTION_ENERGY_PRICE_PER_KWH", "Infinity", "must be a number from 0 to 100"),
    ("PRODUCTION_CURRENCY", "euro", "PRODUCTION_CURRENCY must be a three-letter currency code"),
    ("PRODUCTION_PLAN_HOLD_SECONDS", "-5", "PRODUCTION_PLAN_HOLD_SECONDS must be a whole number from 0 to 604800"),
])
def test_bad_values_are_explained(manage, name, value, message):
    result = manage("check", env={name: value}, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_local_secret_key_is_generated_once_and_kept(manage, tmp_path):
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage("shell", "-v", "0", "-c", script).stdout.strip()
    second = manage("shell", "-v", "0", "-c", script).stdout.strip()
    assert len(first) >= 50 and first == second
    assert (tmp_path / "var" / "secret_key").read_text().strip() == first


def test_settings_read_from_environment(manage):
    script = (
        "import json; from django.conf import settings as s;"
        "print(json.dumps([s.TIME_ZONE, s.DATABASES['default']['ENGINE'], s.STORAGES['default']['BACKEND'],"
        "s.EMAIL_BACKEND, s.MQTT_HOST, s.MQTT_PORT, s.ALLOWED_HOSTS, 'orm' in s.Q_CLUSTER]))"
    )
    result = manage("shell", "-v", "0", "-c", script, env={
        "TIME_ZONE": "America/New_York", "EMAIL_HOST": "smtp.example.com", "MQTT_HOST": "broker.local",
        "MQTT_PORT": "8883", "ALLOWED_HOSTS": "a.example.com,b.example.com",
    })
    assert json.loads(result.stdout) == [
        "America/New_York", "django.db.backends.sqlite3", "django.core.files.storage.FileSystemStorage",
        "django.core.mail.backends.smtp.EmailBackend", "broker.local", 8883, ["a.example.com", "b.example.com"],
        True,
    ]


def test_redis_url_switches_the_task_broker_to_redis(manage):
    """With REDIS_URL set, django-q2 uses Redis; the health check pings it for real."""
    script = "import json; from fablab.health import health_report; print(json.dumps(health_report()))"
    result = manage("shell", "-v", "0", "-c", script, env={"REDIS_URL": "redis://127.0.0.1:6379/15"})
    report = json.loads(result.stdout)
    assert report["checks"]["broker"]["kind"] == "redis"
    assert report["checks"]["broker"]["ok"] is True, report["checks"]["broker"]


def test_unreachable_redis_is_reported_not_raised(manage):
    script = "import json; from fablab.health import health_report; print(json.dumps(health_report()))"
    result = manage("shell", "-v", "0", "-c", script, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    report = json.loads(result.stdout)
    assert report["status"] == "degraded"
    assert report["checks"]["broker"]["ok"] is False
    assert "Connection" in report["checks"]["broker"]["error"]


def test_cost_settings_read_from_environment(manage):
    script = ("from django.conf import settings as s; print(s.PRODUCTION_VAT_PERCENT, s.PRODUCTION_CURRENCY, "
              "s.PRODUCTION_ENERGY_PRICE_PER_KWH, s.PRODUCTION_UNIT_COST_RECENT_JOBS)")
    result = manage("shell", "-v", "0", "-c", script, env={"PRODUCTION_VAT_PERCENT": "7", "PRODUCTION_CURRENCY": "chf",
                                                           "PRODUCTION_ENERGY_PRICE_PER_KWH": " 0.2785 "})
    assert result.stdout.split() == ["7", "CHF", "0.2785", "10"]
