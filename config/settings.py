"""Settings, read from the environment.

With no DATABASE_URL / CELERY_BROKER_URL the platform runs on an embedded default: SQLite (IMMEDIATE
transactions, so concurrent writers queue instead of failing) and Kombu's filesystem broker, which a real
Celery worker process consumes. In production and in the tests both point at PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("APP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("DJANGO_REQUIRE_SECRET", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_REQUIRE_SECRET=1")
    SECRET_KEY = "dev-only-insecure-key-change-me"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "wallets",
    "channels",
    "risk",
    "compliance",
    "withdrawals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "config.metrics.ApiMetricsMiddleware",
]

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
                "django.template.context_processors.i18n",
            ]
        },
    }
]

# --- database -------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
    except Exception as exc:  # dj-database-url raises several types for a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if _db["ENGINE"] not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(f"DATABASE_URL engine {_db['ENGINE']} is not supported (use postgres or sqlite)")
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "db.sqlite3")}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].update({"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"})
_db.setdefault("TEST", {})
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- i18n -----------------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# whitenoise warns on every request when the directory is missing (before the first collectstatic)
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Celery ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or "filesystem://"
if CELERY_BROKER_URL.split("://", 1)[0] not in {"redis", "rediss", "filesystem", "memory"}:
    raise ImproperlyConfigured(f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: use redis://… (or leave unset)")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "withdrawals-sweep": {"task": "withdrawals.sweep", "schedule": env_int("SWEEP_INTERVAL_SECONDS", 15, minimum=1)},
    "wallets-release-pending": {"task": "wallets.release_due", "schedule": 60.0},
    # Yesterday's channel statements, once the providers have published them.
    "channels-reconcile-daily": {
        "task": "withdrawals.reconcile_channels",
        "schedule": crontab(hour=env_int("RECONCILE_HOUR", 3, minimum=0, maximum=23), minute=15),
    },
    "channels-prune-outcomes": {"task": "channels.prune_outcomes", "schedule": 3600.0},
}

# --- REST framework -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.IsMerchantApiClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "withdrawals.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api_auth.ApiKeyRateThrottle"],
}
# Partner API requests per key ("N/sec|min|hour|day"; empty disables). Counted in the cache below.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/min")
# Shared cache (API rate limits) — Redis in production so every web process counts together.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://… (or leave unset for a per-process cache)")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
SPECTACULAR_SETTINGS = {"TITLE": "Withdrawal platform partner API", "VERSION": "1.0.0"}

# --- product settings -----------------------------------------------------------------------------------
PLATFORM_CURRENCY = "CNY"
# A withdrawal that sits in one non-final state longer than this is flagged as stuck by the sweeper.
WITHDRAWAL_STUCK_AFTER_SECONDS = env_int("WITHDRAWAL_STUCK_AFTER_SECONDS", 900, minimum=1)
# The sweeper re-enqueues a withdrawal that has not moved for this long (lost broker message).
WITHDRAWAL_REENQUEUE_AFTER_SECONDS = env_int("WITHDRAWAL_REENQUEUE_AFTER_SECONDS", 30, minimum=1)
# After this long in outcome_unknown without a definite answer, operations is alerted.
WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS = env_int("WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS", 3600, minimum=1)
CHANNEL_CALL_TIMEOUT_SECONDS = env_int("CHANNEL_CALL_TIMEOUT_SECONDS", 10, minimum=1)
# How long a payout task owns a withdrawal while it talks to the channel (a submit, or a query and a resubmit,
# each bounded by the call timeout). A killed worker's lease expires after this and the sweeper takes over.
PAYOUT_LEASE_SECONDS = env_int("PAYOUT_LEASE_SECONDS", 3 * CHANNEL_CALL_TIMEOUT_SECONDS + 30, minimum=5)
SANDBOX_GATEWAY_URL = env_str("SANDBOX_GATEWAY_URL", "http://127.0.0.1:8700")
LARGE_VALUE_THRESHOLD_FEN = env_int("LARGE_VALUE_THRESHOLD_FEN", 5_000_000, minimum=1)

# --- channels: routing, health, callbacks, monitoring ----------------------------------------------------
# Where providers send callbacks: {PLATFORM_BASE_URL}/callbacks/<channel_code>/
PLATFORM_BASE_URL = env_str("PLATFORM_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
SANDBOX_GATEWAY_DATA_DIR = env_str("SANDBOX_GATEWAY_DATA_DIR", str(VAR_DIR / "gateway"))
# Payouts at or above this (fen, net) prefer a bank-direct channel.
ROUTING_LARGE_AMOUNT_FEN = env_int("ROUTING_LARGE_AMOUNT_FEN", 5_000_000, minimum=1)
# Sliding window of channel outcomes the success rate and the breaker look at.
CHANNEL_HEALTH_WINDOW_SECONDS = env_int("CHANNEL_HEALTH_WINDOW_SECONDS", 300, minimum=10)
# The breaker opens when channel-side failures exceed this share of calls (basis points; 500 = 5%) ...
CHANNEL_BREAKER_FAILURE_RATE_BP = env_int("CHANNEL_BREAKER_FAILURE_RATE_BP", 500, minimum=1, maximum=10_000)
# ... over at least this many calls in the window.
CHANNEL_BREAKER_MIN_SAMPLES = env_int("CHANNEL_BREAKER_MIN_SAMPLES", 20, minimum=1)
# An open breaker turns half-open after this long and lets this many probe payouts through.
CHANNEL_BREAKER_COOLDOWN_SECONDS = env_int("CHANNEL_BREAKER_COOLDOWN_SECONDS", 60, minimum=1)
CHANNEL_BREAKER_HALF_OPEN_PROBES = env_int("CHANNEL_BREAKER_HALF_OPEN_PROBES", 3, minimum=1)
CHANNEL_OUTCOME_RETENTION_DAYS = env_int("CHANNEL_OUTCOME_RETENTION_DAYS", 14, minimum=1)
# /healthz/ready fails when the sandbox gateway is down (only if an enabled channel uses it).
HEALTH_CHECK_GATEWAY = env_bool("HEALTH_CHECK_GATEWAY", True)
# Optional bearer token for GET /metrics (empty: open, bind to loopback or protect at the proxy).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
SMS_BACKEND = env_choice("SMS_BACKEND", "console", {"console", "memory"})

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})},
}

# --- risk: learning loop and tier upgrades (appended by the risk issue) --------------------------------------
RISK_SHARED_ENTITY_LIST_MIN = env_int("RISK_SHARED_ENTITY_LIST_MIN", 4, minimum=2)
CELERY_BEAT_SCHEDULE.update(
    {
        "risk-learning-loop": {"task": "risk.learning_loop", "schedule": crontab(hour=4, minute=30)},
        "accounts-tiers-refresh": {"task": "accounts.tiers_refresh", "schedule": crontab(hour=5, minute=0)},
        # AML report drafts for the last two days and the day's custody reconciliation.
        "compliance-daily": {"task": "withdrawals.compliance_daily", "schedule": crontab(hour=2, minute=0)},
    }
)
