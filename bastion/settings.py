"""Django settings. Every value comes from the environment through `bastion.config`.

Embedded mode (the default): SQLite and a filesystem Celery broker in BASTION_DATA_DIR,
secrets generated there on first run. Distributed mode: set BASTION_DATABASE_URL to
PostgreSQL and BASTION_BROKER_URL to Redis or RabbitMQ, and pass the secrets explicitly.
"""

from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url

from bastion.config import (
    ConfigError,
    data_dir,
    encryption_keys,
    env_bool,
    env_int,
    env_list,
    env_str,
    env_url,
    secret_key,
)
from bastion.ops import config as ops_config

DATA_DIR = data_dir()

SECRET_KEY = secret_key(DATA_DIR)
BASTION_ENCRYPTION_KEYS = encryption_keys(DATA_DIR)
DEBUG = env_bool("BASTION_DEBUG", False)

# The address at which phones and people reach Bastion: used in every link, file and email.
BASTION_PUBLIC_URL = env_url("BASTION_PUBLIC_URL", "http://127.0.0.1:8000", {"http", "https"})
_public_host = urlsplit(BASTION_PUBLIC_URL).hostname
ALLOWED_HOSTS = env_list("BASTION_ALLOWED_HOSTS") or [_public_host, "127.0.0.1", "localhost"]
CSRF_TRUSTED_ORIGINS = [BASTION_PUBLIC_URL]

# MDM URLs are administrators' input that Bastion calls with credentials: https only,
# unless a deployment explicitly allows plain http (the emulator, a lab).
BASTION_ALLOW_HTTP_MDM = env_bool("BASTION_ALLOW_HTTP_MDM", False)
BASTION_MDM_CA_BUNDLE = env_str("BASTION_MDM_CA_BUNDLE")
BASTION_MDM_TIMEOUT = env_int("BASTION_MDM_TIMEOUT", 30, minimum=1)
BASTION_SYNC_INTERVAL_MINUTES = env_int("BASTION_SYNC_INTERVAL_MINUTES", 240, minimum=5)

# Agents and the device API.
BASTION_AGENT_BUNDLE_ID = env_str("BASTION_AGENT_BUNDLE_ID", "org.bastion-mtd.agent")
BASTION_DEVICE_RATE_LIMIT = env_int("BASTION_DEVICE_RATE_LIMIT", 120, minimum=1)
BASTION_ADHOC_SYNCS_PER_MINUTE = env_int("BASTION_ADHOC_SYNCS_PER_MINUTE", 20, minimum=1)
BASTION_ADHOC_TIMEOUT = env_int("BASTION_ADHOC_TIMEOUT", 5, minimum=1)
BASTION_ACTION_CLAIM_SECONDS = env_int("BASTION_ACTION_CLAIM_SECONDS", 300, minimum=30)
BASTION_THREAT_NOTIFY_WINDOW_MINUTES = env_int(
    "BASTION_THREAT_NOTIFY_WINDOW_MINUTES", 60, minimum=1
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bastion.tenancy",
    "bastion.inventory",
    "bastion.mdm",
    "bastion.api",
    "bastion.threats",
    "bastion.activation",
    "bastion.console",
    "bastion.ops",
]

MIDDLEWARE = [
    # First, so every response carries a request id and a lost database answers 503.
    "bastion.ops.middleware.RequestContext",
    "django.middleware.security.SecurityMiddleware",
    # Serves the console's own assets: it must work on a closed network, without a CDN.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "bastion.console.middleware.ContentSecurityPolicy",
]

ROOT_URLCONF = "bastion.urls"
WSGI_APPLICATION = "bastion.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("BASTION_DATABASE_URL")
    if url is None:
        # WAL lets the web process read while the worker writes; IMMEDIATE takes the write
        # lock at BEGIN so two writers queue on the busy timeout instead of failing mid-way.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "bastion.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                    # A 64 MiB page cache keeps a 100,000-device inventory's indexes in memory.
                    "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;"
                ),
            },
        }

    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:
        raise ConfigError(f"BASTION_DATABASE_URL is not a usable database URL: {error}") from None
    if config["ENGINE"] not in {
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    }:
        raise ConfigError("BASTION_DATABASE_URL must be a postgres:// or sqlite:// URL")
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("BASTION_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Embedded mode runs no collectstatic: the assets are found in the apps' folders.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:dashboard"
SESSION_COOKIE_AGE = env_int("BASTION_SESSION_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_SECURE = BASTION_PUBLIC_URL.startswith("https:")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"

# Transport and browser protections (see THREAT_MODEL.md). Served over TLS, browsers are
# told to use only https from then on, and plain http is redirected, except the probes a
# load balancer sends before TLS is up.
_served_over_tls = BASTION_PUBLIC_URL.startswith("https:")
SECURE_HSTS_SECONDS = (
    env_int("BASTION_HSTS_SECONDS", 31_536_000, minimum=0) if _served_over_tls else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("BASTION_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("BASTION_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("BASTION_SSL_REDIRECT", _served_over_tls)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
# A proxy's X-Forwarded-Proto is the client's word unless that proxy sets it: trusted only
# when the deployment says a TLS-terminating proxy sits in front.
if env_bool("BASTION_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Preload is a commitment for the whole domain that only its owner can make.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Console sign-in: this many failures for one account or from one address lock it out.
BASTION_LOGIN_MAX_FAILURES = env_int("BASTION_LOGIN_MAX_FAILURES", 5, minimum=1)
BASTION_LOGIN_LOCKOUT_MINUTES = env_int("BASTION_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)


def _broker() -> tuple[str, dict]:
    url = env_str("BASTION_BROKER_URL")
    if url is None:
        queue = DATA_DIR / "broker"
        for sub in ("queue", "processed", "control"):
            (queue / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(queue / "queue"),
            "data_folder_out": str(queue / "queue"),
            "processed_folder": str(queue / "processed"),
            "control_folder": str(queue / "control"),
            "store_processed": False,
        }
        return "filesystem://localhost/", options

    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "amqp", "amqps", "filesystem", "memory"}:
        raise ConfigError("BASTION_BROKER_URL must be a redis://, amqp:// or filesystem:// URL")
    return url, {"visibility_timeout": 3600}


CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = _broker()
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Entries expire just under their period so a stopped scheduler does not pile them up.
    "enqueue-due-syncs": {
        "task": "bastion.mdm.tasks.enqueue_due_syncs",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sweep-pending-actions": {
        "task": "bastion.threats.tasks.sweep_pending_actions",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "prune-rate-windows": {
        "task": "bastion.threats.tasks.prune_rate_windows",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "sweep-pending-emails": {
        "task": "bastion.activation.tasks.sweep_pending_emails",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}


def _email() -> dict:
    url = env_str("BASTION_EMAIL_URL")
    if url is None:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(DATA_DIR / "mail"),
        }

    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps", "smtp+tls"} or not parts.hostname:
        raise ConfigError("BASTION_EMAIL_URL must look like smtp://user:password@host:port")
    query = parse_qs(parts.query)
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": parts.scheme == "smtps",
        "EMAIL_USE_TLS": parts.scheme == "smtp+tls" or "tls" in query,
        "EMAIL_TIMEOUT": 20,
    }


globals().update(_email())
DEFAULT_FROM_EMAIL = env_str("BASTION_EMAIL_FROM", "bastion@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("BASTION_LOG_LEVEL", "WARNING")},
}

# Operations (bastion.ops): JSON log lines with request and run ids, and metrics.
BASTION_LOG_FORMAT = ops_config.log_format()
if BASTION_LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "bastion.ops.logs.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
    LOGGING["loggers"] = {"bastion.request": {"level": "INFO"}}
    # Celery would replace the root handler with its own plain format.
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
BASTION_METRICS_DIR = ops_config.metrics_dir(DATA_DIR)
BASTION_METRICS_TOKEN = env_str("BASTION_METRICS_TOKEN")
