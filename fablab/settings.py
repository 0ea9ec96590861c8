"""fablab settings: every value comes from the environment.

The defaults give a self-contained local installation (SQLite under var/, local
media files, django-q2's ORM broker, console e-mail). Production mode is
`DEBUG=false`: it then requires SECRET_KEY and ALLOWED_HOSTS and turns on the
HTTPS hardening that `manage.py check --deploy` asks for. The variables are
listed in README.md and `.env.example`.
"""

import ipaddress
import re
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from fablab.env import env_bool, env_decimal, env_int, env_list, env_str, local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FABLAB_VAR_DIR") or BASE_DIR / "var")

# --- Mode, secrets, hosts -------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
PRODUCTION = not DEBUG

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is false (production mode). "
            "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must be set when DEBUG is false, e.g. ALLOWED_HOSTS=fablab.example.com"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Applications ---------------------------------------------------------------------

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.inlines",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "axes",
    "csp",
    "django_q",
    "ninja",
    "djstripe",
    "import_export",
    "fablab",
    "catalog",
    "inventory",
    "production",
    "printers",
    "reconstruction",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy on every response (see "Security headers" below).
    "fablab.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "fablab.middleware.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Remembers the request so that audit log entries say who acted and from where (fablab.audit).
    "fablab.audit.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last: turns a locked-out admin login into the lockout page (fablab.security.admin_lockout_response).
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Serves the collected static files (admin, portal) with far-future cache headers.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "fablab.urls"
WSGI_APPLICATION = "fablab.wsgi.application"
ASGI_APPLICATION = "fablab.asgi.application"
AUTH_USER_MODEL = "fablab.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database and cache ---------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'fablab.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web process and the task cluster share
    # one SQLite file without "database is locked" errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background work (django-q2) ------------------------------------------------------

TASK_TIMEOUT_SECONDS = env_int("TASK_TIMEOUT_SECONDS", 600)
LONG_TASK_TIMEOUT_SECONDS = env_int("LONG_TASK_TIMEOUT_SECONDS", 4 * 3600)
LONG_CLUSTER = "long"

Q_CLUSTER = {
    "name": "fablab",
    "workers": env_int("TASK_WORKERS", 2),
    "timeout": TASK_TIMEOUT_SECONDS,
    "retry": TASK_TIMEOUT_SECONDS + 60,
    "max_attempts": 3,
    "queue_limit": 50,
    "save_limit": 1000,
    "ack_failures": True,
    "catch_up": False,
    "label": _("Tasks"),
    # The long-job cluster (reconstruction) runs one job at a time per worker and
    # gets much more time. Start it with Q_CLUSTER_NAME=long manage.py qcluster.
    "ALT_CLUSTERS": {
        LONG_CLUSTER: {
            "workers": env_int("LONG_TASK_WORKERS", 1),
            "timeout": LONG_TASK_TIMEOUT_SECONDS,
            "retry": LONG_TASK_TIMEOUT_SECONDS + 600,
            "max_attempts": 2,
            "queue_limit": 1,
            "recycle": 1,
        }
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Files ----------------------------------------------------------------------------

MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "custom_domain": env_str("AWS_S3_CUSTOM_DOMAIN") or None,
            "location": env_str("AWS_LOCATION"),
            "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE") or None,
            "default_acl": None,
            # Every stored file is private: its URL (the admin's images) is signed and short-lived.
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 300),
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Catalog ------------------------------------------------------------------------

MB = 1024 * 1024
CATALOG_MAX_UPLOAD_BYTES = env_int("CATALOG_MAX_UPLOAD_MB", 200) * MB
# Files up to this size are read while the upload waits; larger ones by a background task.
CATALOG_SYNC_READ_BYTES = env_int("CATALOG_SYNC_READ_MB", 25) * MB

# --- Inventory ------------------------------------------------------------------------

# Largest CIEDE2000 colour difference at which a spool still counts as "the same colour"
# as a sliced file's filament slot (about 2 is barely visible, 10 is clearly different).
INVENTORY_COLOUR_TOLERANCE = float(env_str("INVENTORY_COLOUR_TOLERANCE", "8"))
# Demo only: a printer with automatic dispatch that reports idle again after a job counts as having its plate
# cleared (the simulated printers clear their own plates; `serve --with-printers` turns this on). Leave it off
# with real printers: there an operator confirms the plate is empty.
PRODUCTION_IDLE_MEANS_PLATE_CLEARED = env_bool("DEMO_PLATES_CLEAR_THEMSELVES", False)
# A failed or cancelled print books layers 1..k-1 and the part of the last reported layer k that the printer's
# progress places it at (catalog.selectors.sliced_file_extruded_at); off: all of layer k (layers 1..k).
PRODUCTION_BOOK_INSIDE_LAYER = env_bool("PRODUCTION_BOOK_INSIDE_LAYER", False)
# Feasibility of the queue is checked again in the background after stock or printers change, at most once
# in this many seconds (changes in between are checked together).
PRODUCTION_RECHECK_SECONDS = env_int("PRODUCTION_RECHECK_SECONDS", 30)
# The farm plan (services.print_queue_replan), made in the background after the queue, stock or printers
# change: the planner's time limit, the time a change of material or colour takes on a printer, the time
# allowed for someone to clear a plate that waits, and the operator hours: when a print may start, as
# "WEEKDAYS HH:MM-HH:MM" separated by ";" (0 = Monday, "0-4 08:00-18:00; 5 09:00-13:00"); empty: always
# staffed. PRODUCTION_HOLIDAYS: dates (YYYY-MM-DD, comma-separated) without any shift.
PRODUCTION_PLAN_SECONDS = env_int("PRODUCTION_PLAN_SECONDS", 10)
if not 1 <= PRODUCTION_PLAN_SECONDS <= 600:
    raise ImproperlyConfigured("PRODUCTION_PLAN_SECONDS must be a whole number from 1 to 600.")
PRODUCTION_CHANGEOVER_SECONDS = env_int("PRODUCTION_CHANGEOVER_SECONDS", 600)
if not 0 <= PRODUCTION_CHANGEOVER_SECONDS <= 24 * 3600:
    raise ImproperlyConfigured("PRODUCTION_CHANGEOVER_SECONDS must be a whole number from 0 to 86400.")
PRODUCTION_PLATE_WAIT_SECONDS = env_int("PRODUCTION_PLATE_WAIT_SECONDS", 1800)
if not 0 <= PRODUCTION_PLATE_WAIT_SECONDS <= 7 * 24 * 3600:
    raise ImproperlyConfigured("PRODUCTION_PLATE_WAIT_SECONDS must be a whole number from 0 to 604800.")
# Dispatch follows the plan: a free printer does not take a job the plan puts on another printer while that
# job's planned start is at most this many seconds away from now, before or after (services.print_job_dispatch).
PRODUCTION_PLAN_HOLD_SECONDS = env_int("PRODUCTION_PLAN_HOLD_SECONDS", 900)
if not 0 <= PRODUCTION_PLAN_HOLD_SECONDS <= 7 * 24 * 3600:
    raise ImproperlyConfigured("PRODUCTION_PLAN_HOLD_SECONDS must be a whole number from 0 to 604800.")


def _shifts(text: str) -> list[dict]:
    shifts = []
    for part in (item.strip() for item in text.split(";")):
        if not part:
            continue
        clock = r"(?:[01]\d|2[0-3]):[0-5]\d|24:00"
        found = re.fullmatch(rf"([0-6])(?:-([0-6]))?\s+({clock})-({clock})", part)
        if found is None:
            raise ImproperlyConfigured(f"PRODUCTION_SHIFTS: {part!r} is not like \"0-4 08:00-18:00\" "
                                       f"(weekdays 0 = Monday to 6, then the hours).")
        first, last = int(found[1]), int(found[2] if found[2] is not None else found[1])
        if last < first:
            raise ImproperlyConfigured(f"PRODUCTION_SHIFTS: {part!r} names its weekdays backwards.")
        shifts += [{"weekday": day, "start": found[3], "end": found[4]} for day in range(first, last + 1)]
    return shifts


PRODUCTION_SHIFTS = _shifts(env_str("PRODUCTION_SHIFTS", ""))
PRODUCTION_HOLIDAYS = env_list("PRODUCTION_HOLIDAYS", [])
for _holiday in PRODUCTION_HOLIDAYS:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", _holiday):
        raise ImproperlyConfigured(f"PRODUCTION_HOLIDAYS: {_holiday!r} is not a date like 2025-12-25.")
    try:
        date.fromisoformat(_holiday)
    except ValueError:
        raise ImproperlyConfigured(f"PRODUCTION_HOLIDAYS: {_holiday!r} is not a date like 2025-12-25.") from None
# The shopping list buys for the average daily use over this window, for the lead time
# plus this many days of safety stock, on top of the reorder level.
INVENTORY_USAGE_WINDOW_DAYS = env_int("INVENTORY_USAGE_WINDOW_DAYS", 30)
INVENTORY_SAFETY_DAYS = env_int("INVENTORY_SAFETY_DAYS", 7)
# Restocking printed products (production.restock): the share of weeks whose demand the stock should cover
# (sets the safety stock), the weeks between two looks at the restock page (stock is brought up to cover them),
# and how many weeks of sales the forecasts learn from.
RESTOCK_SERVICE_LEVEL_PERCENT = env_decimal("RESTOCK_SERVICE_LEVEL_PERCENT", "95", minimum="50", maximum="99.9")
RESTOCK_REVIEW_WEEKS = env_decimal("RESTOCK_REVIEW_WEEKS", "2", minimum="0", maximum="52")
RESTOCK_HISTORY_WEEKS = env_int("RESTOCK_HISTORY_WEEKS", 156)
if not 4 <= RESTOCK_HISTORY_WEEKS <= 520:
    raise ImproperlyConfigured("RESTOCK_HISTORY_WEEKS must be a whole number from 4 to 520.")

# --- Production: the cost of a print ------------------------------------------------------
#
# Each print costs material (grams x its spool's price per kg), energy (the printer's average power x hours
# x the tariff), machine time ((purchase price / lifetime hours + maintenance per hour) x hours) and labour
# (handling minutes x the hourly rate). A printer's station may set its own power, price, lifetime,
# maintenance and handling minutes; these are the defaults for a station that leaves them empty.
# Uploads from slicers (production/octoprint.py): which variant a file is for. "folder": the first folder of
# its path is the SKU (SKU/anything.gcode); "prefix": its name starts with the SKU and the separator
# (SKU_anything.gcode, or SKU.gcode). Matched without regard to letter case; others go to the inbox.
SLICER_UPLOAD_SKU_RULES = env_list("SLICER_UPLOAD_SKU_RULES", ["folder", "prefix"])
if not set(SLICER_UPLOAD_SKU_RULES) <= {"folder", "prefix"}:
    raise ImproperlyConfigured(f"SLICER_UPLOAD_SKU_RULES takes folder and/or prefix, got {SLICER_UPLOAD_SKU_RULES!r}.")
SLICER_UPLOAD_SKU_SEPARATOR = env_str("SLICER_UPLOAD_SKU_SEPARATOR", "_")
if len(SLICER_UPLOAD_SKU_SEPARATOR) != 1:
    raise ImproperlyConfigured("SLICER_UPLOAD_SKU_SEPARATOR must be one character.")
PRODUCTION_CURRENCY = env_str("PRODUCTION_CURRENCY", "EUR").upper()
if not (len(PRODUCTION_CURRENCY) == 3 and PRODUCTION_CURRENCY.isascii() and PRODUCTION_CURRENCY.isalpha()):
    raise ImproperlyConfigured(f"PRODUCTION_CURRENCY must be a three-letter currency code such as EUR, "
                               f"got {PRODUCTION_CURRENCY!r}.")
PRODUCTION_ENERGY_PRICE_PER_KWH = env_decimal("PRODUCTION_ENERGY_PRICE_PER_KWH", "0.30", minimum="0", maximum="100")
PRODUCTION_PRINTER_POWER_W = env_decimal("PRODUCTION_PRINTER_POWER_W", "150", minimum="0", maximum="20000")
PRODUCTION_PRINTER_PRICE = env_decimal("PRODUCTION_PRINTER_PRICE", "1000", minimum="0", maximum="1000000")
PRODUCTION_PRINTER_LIFETIME_HOURS = env_decimal("PRODUCTION_PRINTER_LIFETIME_HOURS", "5000", minimum="100",
                                                maximum="1000000")
PRODUCTION_PRINTER_MAINTENANCE_PER_HOUR = env_decimal("PRODUCTION_PRINTER_MAINTENANCE_PER_HOUR", "0.05",
                                                      minimum="0", maximum="1000")
PRODUCTION_LABOUR_PER_HOUR = env_decimal("PRODUCTION_LABOUR_PER_HOUR", "25", minimum="0", maximum="10000")
PRODUCTION_HANDLING_MINUTES = env_decimal("PRODUCTION_HANDLING_MINUTES", "5", minimum="0", maximum="1440")
# Sale prices are gross (VAT included); margins are computed on the net price.
PRODUCTION_VAT_PERCENT = env_decimal("PRODUCTION_VAT_PERCENT", "19", minimum="0", maximum="100")
# A variant's unit cost is the mean cost per unit of its last this many completed prints.
PRODUCTION_UNIT_COST_RECENT_JOBS = env_int("PRODUCTION_UNIT_COST_RECENT_JOBS", 10)
if not 1 <= PRODUCTION_UNIT_COST_RECENT_JOBS <= 1000:
    raise ImproperlyConfigured("PRODUCTION_UNIT_COST_RECENT_JOBS must be a whole number from 1 to 1000.")

# --- Reconstruction ---------------------------------------------------------------------

RECONSTRUCTION_MAX_PHOTO_MB = env_int("RECONSTRUCTION_MAX_PHOTO_MB", 40)
RECONSTRUCTION_MAX_JOB_MB = env_int("RECONSTRUCTION_MAX_JOB_MB", 2000)
# Checked from the image header before decoding: a decoded photo takes 3 bytes per pixel, so 50 MP
# (48 MP phone cameras, 45 MP full-frame cameras) needs about 150 MB while it is checked.
RECONSTRUCTION_MAX_PHOTO_PIXELS = env_int("RECONSTRUCTION_MAX_PHOTO_MEGAPIXELS", 50) * 1_000_000
RECONSTRUCTION_MIN_PHOTOS = 8
RECONSTRUCTION_MAX_PHOTOS = 200
RECONSTRUCTION_RETENTION_DAYS = env_int("RECONSTRUCTION_RETENTION_DAYS", 30)
# A scan stops itself after this long; keep it below LONG_TASK_TIMEOUT_SECONDS.
RECONSTRUCTION_TIME_LIMIT_SECONDS = env_int("RECONSTRUCTION_TIME_LIMIT_SECONDS", 2 * 3600)
# Where running jobs keep their intermediate files (per job, removed when it ends).
RECONSTRUCTION_WORK_DIR = Path(env_str("RECONSTRUCTION_WORK_DIR") or VAR_DIR / "scan-work")

# --- Printers ---------------------------------------------------------------------------

# Key that encrypts printer credentials (access codes, passwords, API keys) at rest.
# Empty: derived from SECRET_KEY. Changing it makes stored credentials unreadable.
PRINTER_CREDENTIALS_KEY = env_str("PRINTER_CREDENTIALS_KEY")
PRUSALINK_POLL_SECONDS = env_int("PRUSALINK_POLL_SECONDS", 30)
PRINTER_HTTP_TIMEOUT_SECONDS = env_int("PRINTER_HTTP_TIMEOUT_SECONDS", 5)
PRINTER_TELEMETRY_RETENTION_DAYS = env_int("PRINTER_TELEMETRY_RETENTION_DAYS", 30)
# Files on printers (listing and download into the catalog): one transfer per printer at a time.
BAMBU_FTPS_PORT = env_int("BAMBU_FTPS_PORT", 990)
PRINTER_FILES_TIMEOUT_SECONDS = env_int("PRINTER_FILES_TIMEOUT_SECONDS", 20)
PRINTER_FILES_LOCK_WAIT_SECONDS = env_int("PRINTER_FILES_LOCK_WAIT_SECONDS", 5)
# Bambu Lab over MQTT (run_printers); see printers/conf.py for what each does. The defaults
# live here only: the printers app reads these settings and repeats none of them.
BAMBU_CA_FILE = env_str("BAMBU_CA_FILE")
BAMBU_PLAIN_MQTT_PORTS = tuple(int(port) for port in env_list("BAMBU_PLAIN_MQTT_PORTS", ["1883"]))
BAMBU_KEEPALIVE_SECONDS = env_int("BAMBU_KEEPALIVE_SECONDS", 30)
BAMBU_WATCHDOG_SECONDS = float(env_int("BAMBU_WATCHDOG_SECONDS", 60))
BAMBU_BACKOFF_MIN_SECONDS = float(env_int("BAMBU_BACKOFF_MIN_SECONDS", 1))
BAMBU_BACKOFF_MAX_SECONDS = float(env_int("BAMBU_BACKOFF_MAX_SECONDS", 30))
BAMBU_COMMAND_TIMEOUT_SECONDS = float(env_int("BAMBU_COMMAND_TIMEOUT_SECONDS", 5))
BAMBU_CONNECTS_PER_SECOND = float(env_int("BAMBU_CONNECTS_PER_SECOND", 25))
BAMBU_CONNECT_THREADS = env_int("BAMBU_CONNECT_THREADS", 4)
PRINTER_STATE_WRITE_SECONDS = float(env_int("PRINTER_STATE_WRITE_SECONDS", 5))
PRINTER_RECONCILE_SECONDS = float(env_int("PRINTER_RECONCILE_SECONDS", 5))

# --- Internationalisation and time ---------------------------------------------------

TIME_ZONE = env_str("TIME_ZONE", "Europe/Berlin")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE {TIME_ZONE!r} is not a known IANA time zone.") from None
USE_TZ = True
USE_I18N = True
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"LANGUAGE_CODE must be one of {', '.join(dict(LANGUAGES))}.")
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Authentication (staff in the admin, customers through allauth) -------------------

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out admin login before any password is checked.
    "fablab.security.AdminLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"

ACCOUNT_ADAPTER = "fablab.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "fablab.forms.SignupForm"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[fablab] "
ACCOUNT_LOGOUT_REDIRECT_URL = "portal:home"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3

INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 14)
# An organization's data export can be downloaded by its owners for this long; then its file is removed.
ORGANIZATION_EXPORT_VALID_HOURS = env_int("ORGANIZATION_EXPORT_VALID_HOURS", 72)

# --- Log-in lockout (admin: django-axes; portal: allauth's rate limits) ------------------
#
# Both doors count failed log-ins per account AND address together: LOGIN_FAILURE_LIMIT wrong passwords
# for one account from one address lock that pair for LOGIN_LOCKOUT_MINUTES. Other accounts from the same
# address (a shared office proxy) and the same account from elsewhere still log in. Behind a reverse proxy
# set TRUSTED_PROXY_COUNT to the number of proxies in front of the app, so that the client's own address
# (from X-Forwarded-For) is counted, not the proxy's. Staff unlock an account in the admin (System ->
# Access attempts: delete the row) or with `manage.py axes_reset_username <name>` / `axes_reset`.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT_MINUTES < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be whole numbers of 1 or more.")
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT


def _networks(name: str) -> list:
    """Addresses and networks (CIDR) separated by commas, e.g. "192.168.1.20, 10.0.5.0/24"."""
    networks = []
    for part in env_str(name, "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ImproperlyConfigured(f"{name}: {part.strip()!r} is not an address or a network.") from None
    return networks


# Printer hosts at these addresses may read spools and report their use through the Spoolman API (/spoolman/)
# without a key, as most Spoolman installations are run. Empty (the default): every call needs a key.
SPOOLMAN_ALLOW_HOSTS = _networks("SPOOLMAN_ALLOW_HOSTS")

AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ONLY_ADMIN_SITE = True  # the portal is guarded by allauth's own limits below
AXES_HANDLER = "fablab.security.AdminOnlyHandler"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # fablab.admin registers its own (unfold) pages for the attempts
AXES_CLIENT_IP_CALLABLE = "fablab.security.client_ip"
AXES_LOCKOUT_CALLABLE = "fablab.security.admin_lockout_response"
AXES_VERBOSE = False

# allauth: the login_failed key is the account and the address together (fablab.adapters.AccountAdapter);
# no per-address limit on failures alone, which a shared proxy address would trip for everyone behind it.
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{LOGIN_FAILURE_LIMIT}/{LOGIN_LOCKOUT_MINUTES * 60}s/key",
}

# --- E-mail ---------------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST or PRODUCTION
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "fablab <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Printers' MQTT broker (Home Assistant publishing, simulators) ---------------------

MQTT_HOST = env_str("MQTT_HOST", "127.0.0.1")
MQTT_PORT = env_int("MQTT_PORT", 1883)
MQTT_USERNAME = env_str("MQTT_USERNAME")
MQTT_PASSWORD = env_str("MQTT_PASSWORD")
MQTT_TLS = env_bool("MQTT_TLS", False)
# Home Assistant MQTT discovery (manage.py publish_home_assistant); empty: not published.
HOME_ASSISTANT_MQTT_URL = env_str("HOME_ASSISTANT_MQTT_URL")
HOME_ASSISTANT_DISCOVERY_PREFIX = env_str("HOME_ASSISTANT_DISCOVERY_PREFIX", "homeassistant")

# --- Stripe (read by the billing app) ---------------------------------------------------

STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# dj-stripe: the organization is the Stripe customer; webhooks arrive at /stripe/webhook/<uuid>/ (the
# endpoint's row in the admin) and are checked with its secret; `manage.py billing_sync_plans` sets up the prices.
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_API_VERSION = env_str("STRIPE_API_VERSION", "2025-03-31.basil")
DJSTRIPE_SUBSCRIBER_MODEL = "fablab.Organization"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# A failed payment keeps the plan's limits this many days before the organization falls back to Free.
BILLING_GRACE_DAYS = env_int("BILLING_GRACE_DAYS", 7)
# An overage unit whose report to Stripe's meter fails this many times (backoff 1 min doubling, at most
# 6 h apart) is marked failed for staff.
BILLING_METER_MAX_ATTEMPTS = env_int("BILLING_METER_MAX_ATTEMPTS", 10)
# The portal's address, for links in e-mails sent from background tasks (no request to build them from).
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- API ------------------------------------------------------------------------------

API_PAGE_SIZE_DEFAULT = 25
API_PAGE_SIZE_MAX = env_int("API_PAGE_SIZE_MAX", 100)
# Requests per organization (all its keys together), and wrong API keys per source address (past that the
# address gets 429 until the window ends); see fablab.api_throttling. Rates are N/s, N/m, N/h or N/d.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/m")
API_AUTH_FAILURE_LIMIT = env_str("API_AUTH_FAILURE_LIMIT", "30/m")
for _name in ("API_RATE_LIMIT", "API_AUTH_FAILURE_LIMIT"):
    if not re.fullmatch(r"[1-9][0-9]*/[smhd]", globals()[_name]):
        raise ImproperlyConfigured(f"{_name} must be a rate such as 600/m (N per s, m, h or d), "
                                   f"got {globals()[_name]!r}.")
API_KEY_HEADER = "X-API-Key"
NINJA_PAGINATION_MAX_LIMIT = API_PAGE_SIZE_MAX
NINJA_PAGINATION_PER_PAGE = API_PAGE_SIZE_DEFAULT
SIGNUP_OPEN = env_bool("SIGNUP_OPEN", True)

# --- Security hardening (production mode) ----------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /api/v1/health must answer plain HTTP probes from a load balancer.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]

# --- Security headers: Content-Security-Policy, Permissions-Policy ------------------------
#
# Scripts only from this site, or inline with the response's nonce (`<script nonce="{{ CSP_NONCE }}">`); no
# inline event handlers. The admin's pages also allow 'unsafe-eval', which unfold's Alpine.js needs
# (fablab.middleware.ContentSecurityPolicyMiddleware). Styles allow 'unsafe-inline': unfold, Swagger UI and
# Chart.js set style attributes, which nonces cannot cover. Images also from data: URIs (Swagger UI's
# icons) and blob:; forms post to this site and to Stripe's hosted pages (Checkout, Customer Portal).
# With files in a bucket (S3, R2, MinIO), that bucket's address is allowed for images and fetches.
_csp_files = [url for url in (env_str("AWS_S3_ENDPOINT_URL"),
                              f"https://{env_str('AWS_S3_CUSTOM_DOMAIN')}" if env_str("AWS_S3_CUSTOM_DOMAIN") else "")
              if url]
if AWS_STORAGE_BUCKET_NAME and not _csp_files:
    _csp_files = ["https://*.amazonaws.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:", *_csp_files],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF, *_csp_files],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, "https://checkout.stripe.com", "https://billing.stripe.com"],
        **({"upgrade-insecure-requests": True} if PRODUCTION else {}),
    },
}
# Browser features no page of fablab uses are switched off for every page and anything it embeds.
PERMISSIONS_POLICY = env_str(
    "PERMISSIONS_POLICY",
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=()",
)

# --- Logging --------------------------------------------------------------------------

# Every handler redacts API keys (fl_...): a key in a URL path (/spoolman/fl_.../) would otherwise land in
# the access log lines and Django's request warnings. The web servers' own loggers (runserver, uvicorn,
# gunicorn) get the same filter when Django starts (fablab.logs.redact_server_logs, from FablabConfig.ready).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_api_keys": {"()": "fablab.logs.RedactApiKeys"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_api_keys"]},
        "server": {"class": "logging.StreamHandler", "formatter": "server", "filters": ["redact_api_keys"]},
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false", "redact_api_keys"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},  # to root's console, redacted
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- The admin (django-unfold) --------------------------------------------------------

UNFOLD = {
    "SITE_TITLE": "fablab",
    "SITE_HEADER": "fablab",
    "SITE_SUBHEADER": _("3D printing, end to end"),
    "SITE_SYMBOL": "precision_manufacturing",
    "SITE_URL": "/",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": True,
    "SHOW_LANGUAGES": True,
    "ENVIRONMENT": "fablab.admin_site.environment",
    "DASHBOARD_CALLBACK": "fablab.dashboard.dashboard_callback",
    "STYLES": [],
    "COLORS": {
        "primary": {
            "50": "oklch(97.7% .014 180)",
            "100": "oklch(95.3% .051 180)",
            "200": "oklch(91% .096 180)",
            "300": "oklch(85.5% .138 181)",
            "400": "oklch(77.7% .152 182)",
            "500": "oklch(70.4% .14 182)",
            "600": "oklch(60% .118 184)",
            "700": "oklch(51.1% .096 186)",
            "800": "oklch(43.7% .078 188)",
            "900": "oklch(38.6% .063 188)",
            "950": "oklch(27.7% .046 192)",
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "fablab.admin_site.navigation",
    },
}

FABLAB_CORPUS = Path(env_str("FABLAB_CORPUS") or BASE_DIR.parent / "shared" / "corpus")

