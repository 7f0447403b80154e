"""Settings, read from the environment.

Every value has a development default so that `make run` works on a fresh
machine; production sets DEBUG=false, SECRET_KEY, DATABASE_URL, REDIS_URL and
CREDENTIAL_KEYS.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "development-only-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip()
    for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",")
    if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "teams",
    "credentials",
    "nexsets",
    "destinations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]

if not DEBUG:
    # Serves the files of `collectstatic` in production; runserver and the
    # test live server serve them in development.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["nexsets.templatetags.nexset_tags"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process write to one file: wait for the lock instead
    # of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
    }

# Test databases are named per test process, so that several test runs on one
# machine do not share one; SQLite's is a file, not memory, so that worker
# processes started by the end-to-end tests see it.
_TEST_SUFFIX = os.environ.get("TEST_DATABASE_SUFFIX", str(os.getpid()))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{_TEST_SUFFIX}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {
        "NAME": f"test_{DATABASES['default']['NAME']}_{_TEST_SUFFIX}"
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# Upload limits: files larger than this are rejected whole with the limit named.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 200 * 2**20)
# Bodies read into memory (forms, webhook posts); the webhook takes up to this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 2**20

# Cookies and headers. The Content-Security-Policy header is set by
# config.middleware.ContentSecurityPolicyMiddleware.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A login lasts this many seconds. It is shorter than Django's two-week
# default because a session can use the team's API keys.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# With DEBUG off the application is expected behind HTTPS: cookies are sent
# only over HTTPS, http requests are redirected, and the HSTS header makes
# browsers use HTTPS for a year. SECURE_PROXY_SSL_HEADER trusts X-Forwarded-Proto,
# so the proxy in front must set or strip that header.
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    # Covers subdomains of the application's own host name only.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HSTS preloading is decided for a whole registrable domain, which a
    # self-hosted installation usually does not own, so it is left off.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Login throttling (teams.throttle): after this many failed logins within
# LOGIN_FAILURE_WINDOW_SECONDS, for one username or from one client address,
# further attempts are rejected without checking the password until the
# window ends.
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
LOGIN_MAX_FAILURES_PER_USERNAME = env_int("LOGIN_MAX_FAILURES_PER_USERNAME", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
# Number of reverse proxies in front of the application that append the
# client address to X-Forwarded-For. 0 uses REMOTE_ADDR and ignores the
# header, which a client could otherwise forge.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)


# API keys of credentials are encrypted with Fernet. CREDENTIAL_KEYS lists
# Fernet keys, newest first: the first encrypts, all of them decrypt, so a key
# can be rotated without downtime (see `manage.py rotate_credential_keys`).
def _development_fernet_key() -> str:
    digest = hashlib.sha256(("credential-key:" + SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


CREDENTIAL_KEYS = [
    k.strip() for k in os.environ.get("CREDENTIAL_KEYS", "").split(",") if k.strip()
]
if not CREDENTIAL_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CREDENTIAL_KEYS is required when DEBUG is false: generate a key with "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        )
    CREDENTIAL_KEYS = [_development_fernet_key()]
for _position, _key in enumerate(CREDENTIAL_KEYS, start=1):
    try:
        Fernet(_key)
    except ValueError:
        # The message names the position only, never the key.
        raise ImproperlyConfigured(
            f"CREDENTIAL_KEYS entry {_position} is not a Fernet key "
            "(32 bytes in URL-safe base64, 44 characters)"
        ) from None

# A PX-compatible server to offer as the "Sandbox" region, such as the bundled
# sandbox (`python -m sandbox`). Empty disables the region.
PX_SANDBOX_URL = os.environ.get("PX_SANDBOX_URL", "").rstrip("/")
PX_REQUEST_TIMEOUT = env_float("PX_REQUEST_TIMEOUT", 15.0)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# The cache stores the login throttling counters, which every web process must
# share, so it is Redis in development, tests and production alike. Keys
# start with "pxsync:", which the test fixtures clear between tests.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "pxsync:cache",
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A delivery task works for at most DELIVERY_SLICE_SECONDS, then re-queues
# itself, so the visibility timeout only has to exceed one slice. A task whose
# worker died is handed to another worker after this many seconds.
DELIVERY_SLICE_SECONDS = env_int("DELIVERY_SLICE_SECONDS", 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep trying to queue the next slice of a run for about a minute while Redis
# restarts; a run whose slice could not be queued is found by
# resume_stalled_runs after DELIVERY_LEASE_SECONDS.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 30,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 2,
}
CELERY_BEAT_SCHEDULE = {
    "resume-stalled-runs": {
        "task": "destinations.tasks.resume_stalled_runs",
        "schedule": float(env_int("RESUME_STALLED_EVERY_SECONDS", 30)),
    },
}

# Worker-side delivery tuning.
# Requests in flight per delivery task. The shared rate limit, not this,
# bounds the rate: 32 keeps PX's 200 per second reachable at 150 ms a request.
DELIVERY_CONCURRENCY = env_int("DELIVERY_CONCURRENCY", 32)
# Tasks queued for each run; each claims its own records, so a run spreads
# over that many worker processes (all within the credential's rate limit).
DELIVERY_TASKS_PER_RUN = env_int("DELIVERY_TASKS_PER_RUN", 2)
DELIVERY_CLAIM_SIZE = env_int("DELIVERY_CLAIM_SIZE", 200)
# Records claimed by a worker that has not reported for this long are put back
# to pending: only the requests in flight when that worker died may repeat.
DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 120)
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 6)
# Longest wait between two attempts of one request, in seconds; the waits
# double from 0.5 s up to this, with jitter.
DELIVERY_MAX_BACKOFF_SECONDS = env_float("DELIVERY_MAX_BACKOFF_SECONDS", 30.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
