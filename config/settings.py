"""Settings, read from the environment.

With no DATABASE_URL / CELERY_BROKER_URL the platform runs on an embedded default: SQLite (IMMEDIATE
transactions, so concurrent writers queue instead of failing) and Kombu's filesystem broker, which a real
Celery worker process consumes. In production and in the tests both point at PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("APP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- modes ---------------------------------------------------------------------------------------------
# DJANGO_DEBUG=0 (the default) is production: the refusals at the end of this file apply. DEMO_MODE=1 (make run)
# turns on the demo helpers — the SMS box that shows codes, the sandbox face buttons, demo users, fixed API keys,
# printed staff TOTP seeds — and is refused without DJANGO_DEBUG=1, so a production server can never have them.
# DJANGO_TESTING=1 is set by config/settings_test.py for the test suite only (in-process SMS outbox, plain HTTP).
DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = env_bool("DJANGO_TESTING", False)
DEMO_MODE = env_bool("DEMO_MODE", False)
if DEMO_MODE and not DEBUG:
    raise ImproperlyConfigured(
        "DEMO_MODE=1 needs DJANGO_DEBUG=1: demo mode shows SMS codes, plays the face check and seeds known "
        "passwords and API keys, which a production server (DJANGO_DEBUG=0) must never do"
    )
PRODUCTION = not DEBUG and not TESTING
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    if PRODUCTION or env_bool("DJANGO_REQUIRE_SECRET", False):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set with DJANGO_DEBUG=0: it signs sessions, CSRF tokens and withdrawal "
            "drafts and keys the step-up code hashes. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` (or run with DJANGO_DEBUG=1 locally)"
        )
    SECRET_KEY = DEV_SECRET_KEY
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is too weak: use at least 50 random characters")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])

INSTALLED_APPS = [
    "config.apps.PlatformAdminConfig",  # django.contrib.admin with the OTP-protected staff site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/v1/docs, served from our own origin
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "workdays",  # the working-day calendar, below every app of ours but config
    "accounts",
    "webhooks",  # merchants' webhook endpoints, the event outbox and its delivery (issue 14)
    "wallets",
    "channels",
    "risk",
    "compliance",
    "withdrawals",
    "operations",  # whole-platform jobs and commands, above every other app
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.security.RejectNulBytesMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "config.security.SessionIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "config.metrics.ApiMetricsMiddleware",
    # Last, as axes documents: it turns a lockout flagged during the request into the lockout response.
    "axes.middleware.AxesMiddleware",
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
            ],
            "libraries": {"money": "config.money_filters"},  # yuan / yuan_plain (config.money)
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

# --- transport and browser security ---------------------------------------------------------------------
# Production is served over HTTPS (TLS at the proxy: set DJANGO_TRUST_X_FORWARDED_PROTO=1 when the proxy sets
# X-Forwarded-Proto). DJANGO_HTTPS=0 is for a production-like run on plain http://127.0.0.1 only.
HTTPS = env_bool("DJANGO_HTTPS", PRODUCTION)
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
# Load balancer probes and the metrics scraper talk plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz/", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"
# A session lives at most this long, and ends sooner after a quiet spell (config.security).
SESSION_COOKIE_AGE = env_int("SESSION_MAX_AGE_SECONDS", 12 * 3600, minimum=300)
SESSION_IDLE_STAFF_SECONDS = env_int("SESSION_IDLE_STAFF_SECONDS", 15 * 60, minimum=60)
SESSION_IDLE_MERCHANT_SECONDS = env_int("SESSION_IDLE_MERCHANT_SECONDS", 30 * 60, minimum=60)
SESSION_IDLE_RESOLUTION_SECONDS = 30
# Content-Security-Policy (django-csp): scripts only from our own origin — the pages have no inline script or
# event handler. Inline style attributes (ours and Django admin's) are allowed; styles cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- login: lockout (django-axes) and staff second factor -----------------------------------------------
AUTHENTICATION_BACKENDS = [
    "config.security.LockoutBackend",  # axes: refuses a locked-out account or IP before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT failures per account or per IP (merchant login, admin login and its TOTP step, partner API
# keys) lock that account / IP for LOGIN_LOCKOUT_MINUTES; trying during a lockout extends it. Unlock: delete
# the attempt in the admin (Axes › Access attempts) or `manage.py axes_reset_username NAME`.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=3)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # rows in our database: PostgreSQL or SQLite
AXES_LOCKOUT_CALLABLE = "config.security.axes_lockout_response"
AXES_RESET_ON_SUCCESS = False  # else one good login of the attacker's own account would clear the IP's count
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "otp_token", "code", "current_code"]
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)  # behind a proxy, the proxy sets REMOTE_ADDR
AXES_VERBOSE = False  # log lines name the lockout parameters, masked (AXES_SENSITIVE_PARAMETERS)
OTP_TOTP_ISSUER = "卡盟提现平台"

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
RECONCILE_HOUR = env_int("RECONCILE_HOUR", 3, minimum=0, maximum=23)
RECONCILE_CATCHUP_DAYS = env_int("RECONCILE_CATCHUP_DAYS", 7, minimum=1, maximum=60)
CELERY_BEAT_SCHEDULE = {
    "withdrawals-sweep": {"task": "withdrawals.sweep", "schedule": env_int("SWEEP_INTERVAL_SECONDS", 15, minimum=1)},
    "wallets-release-pending": {"task": "wallets.release_due", "schedule": 60.0},
    "withdrawals-auto-settlement": {"task": "withdrawals.settlement_run_due", "schedule": 60.0},
    # Channel statements not imported yet: yesterday's once the providers have published them (RECONCILE_HOUR),
    # and any day of the last RECONCILE_CATCHUP_DAYS that a failed download or a lost message missed.
    "channels-reconcile": {"task": "withdrawals.reconcile_channels", "schedule": crontab(minute=15)},
    "channels-prune-outcomes": {"task": "channels.prune_outcomes", "schedule": 3600.0},
    # Reports due today and overdue: an operations alert for each overdue one (once).
    "compliance-deadlines": {"task": "operations.compliance_deadlines", "schedule": crontab(minute=5)},
}

# --- REST framework -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.IsMerchantApiClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["withdrawals.api.parsers.SafeJSONParser"],  # depth, NUL and size limits
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
# The partner API's OpenAPI document (withdrawals/api/schema.py): served at /api/v1/schema, Swagger UI at
# /api/v1/docs from our own static files (sidecar), so the CSP above needs nothing from elsewhere.
SPECTACULAR_SETTINGS = {
    "TITLE": "Withdrawal platform partner API",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SCHEMA_PATH_PREFIX_TRIM": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {
        "WithdrawalStatusEnum": "withdrawals.models.Status",
        "PayoutAccountStatusEnum": "accounts.models.PayoutAccount.Status",
        "SpeedEnum": "withdrawals.models.Speed",
    },
    "PREPROCESSING_HOOKS": ["withdrawals.api.schema.strip_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "withdrawals.api.schema.add_links",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "displayOperationId": True},
}

# --- product settings -----------------------------------------------------------------------------------
PLATFORM_CURRENCY = "CNY"
# A withdrawal that sits in one non-final state longer than this is flagged as stuck by the sweeper.
WITHDRAWAL_STUCK_AFTER_SECONDS = env_int("WITHDRAWAL_STUCK_AFTER_SECONDS", 900, minimum=1)
# T+1 withdrawals are paid together in a batch at this local time (HH:MM, Asia/Shanghai) on the first working
# day (workdays calendar: weekends, public holidays and make-up working days) after the day they were submitted.
T1_BATCH_TIME = env_str("T1_BATCH_TIME", "10:00")
# The sweeper re-enqueues a withdrawal that has not moved for this long (lost broker message).
WITHDRAWAL_REENQUEUE_AFTER_SECONDS = env_int("WITHDRAWAL_REENQUEUE_AFTER_SECONDS", 30, minimum=1)
# After this long in outcome_unknown without a definite answer, operations is alerted.
WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS = env_int("WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS", 3600, minimum=1)
CHANNEL_CALL_TIMEOUT_SECONDS = env_int("CHANNEL_CALL_TIMEOUT_SECONDS", 10, minimum=1)
# How long a payout task owns a withdrawal while it talks to the channel (a submit, or a query and a resubmit,
# each bounded by the call timeout). A killed worker's lease expires after this and the sweeper takes over.
# A channel's "not found" proves that our earlier requests to it never took effect only once they cannot still be
# on their way: this long after the last one was sent. Then a payout refused there may move to another channel.
PAYOUT_IN_FLIGHT_GRACE_SECONDS = env_int("PAYOUT_IN_FLIGHT_GRACE_SECONDS", 120, minimum=0)
PAYOUT_LEASE_SECONDS = env_int("PAYOUT_LEASE_SECONDS", 3 * CHANNEL_CALL_TIMEOUT_SECONDS + 30, minimum=5)
SANDBOX_GATEWAY_URL = env_str("SANDBOX_GATEWAY_URL", "http://127.0.0.1:8700")
LARGE_VALUE_THRESHOLD_FEN = env_int("LARGE_VALUE_THRESHOLD_FEN", 5_000_000, minimum=1)

# --- compliance (issue 13): report rules, filing deadlines, retention -------------------------------------
# Large-value reports are due this many working days (workdays/) after the transaction's day (PBOC 2016 No.3).
LARGE_VALUE_REPORT_DUE_WORKING_DAYS = env_int("LARGE_VALUE_REPORT_DUE_WORKING_DAYS", 5, minimum=1)
# Suspicious reports are due this many working days after the day their grounds were established (0: that day).
SUSPICIOUS_REPORT_DUE_WORKING_DAYS = env_int("SUSPICIOUS_REPORT_DUE_WORKING_DAYS", 1, minimum=0)
# One merchant's paid withdrawals of one day adding up to this much (fen) raise one large-value report.
DAILY_AGGREGATE_THRESHOLD_FEN = env_int("DAILY_AGGREGATE_THRESHOLD_FEN", 5_000_000, minimum=1)
# Structuring: withdrawals "just under" the large-value threshold (within this percent below it), on at least
# STRUCTURING_MIN_DAYS different days, or from at least two linked merchants, within the window.
STRUCTURING_BAND_PERCENT = env_int("STRUCTURING_BAND_PERCENT", 10, minimum=1, maximum=50)
STRUCTURING_MIN_DAYS = env_int("STRUCTURING_MIN_DAYS", 3, minimum=2)
STRUCTURING_WINDOW_DAYS = env_int("STRUCTURING_WINDOW_DAYS", 7, minimum=1)
# Money, KYC, report, review and audit records are kept at least this long (they cannot be deleted at all).
RECORD_RETENTION_YEARS = env_int("RECORD_RETENTION_YEARS", 5, minimum=5)
# Sanctions / PEP screening: a name scoring at least this (0–100, as written or by pinyin) against a list entry is
# a hit, and a hit on a payee sends the withdrawal to review.
SCREENING_MATCH_THRESHOLD = env_int("SCREENING_MATCH_THRESHOLD", 90, minimum=50, maximum=100)

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

# --- step-up: SMS provider, face provider, limits ----------------------------------------------------------
# SMS_PROVIDER=aliyun: Alibaba Cloud SMS SendSms (risk.sms) with the ALIYUN_SMS_* settings; the demo points it at
# the sandbox receiver (manage.py sandbox_sms). memory: an in-process outbox, never in production.
SMS_PROVIDER = env_choice(
    "SMS_PROVIDER", "aliyun" if DEMO_MODE else ("memory" if not PRODUCTION else ""), {"", "aliyun", "memory"}
)
SMS_SANDBOX_URL = env_str("SMS_SANDBOX_URL", "http://127.0.0.1:8710/")
ALIYUN_SMS_ENDPOINT = env_str("ALIYUN_SMS_ENDPOINT", SMS_SANDBOX_URL if DEMO_MODE else "https://dysmsapi.aliyuncs.com/")
ALIYUN_SMS_ACCESS_KEY_ID = env_str("ALIYUN_SMS_ACCESS_KEY_ID", "demo-sms-access-key" if DEMO_MODE else "")
ALIYUN_SMS_ACCESS_KEY_SECRET = env_str(
    "ALIYUN_SMS_ACCESS_KEY_SECRET", "demo-sms-secret-not-for-production" if DEMO_MODE else ""
)
ALIYUN_SMS_SIGN_NAME = env_str("ALIYUN_SMS_SIGN_NAME", "卡盟提现")
ALIYUN_SMS_TEMPLATE_CODE = env_str("ALIYUN_SMS_TEMPLATE_CODE", "SMS_DEMO_0001" if DEMO_MODE else "")
ALIYUN_SMS_REGION = env_str("ALIYUN_SMS_REGION", "cn-hangzhou")
# The face check needs a provider; the sandbox one (passes whoever asks it to) only outside production.
FACE_PROVIDER = env_choice("FACE_PROVIDER", "" if PRODUCTION else "sandbox", {"", "sandbox"})
STEPUP_MAX_FAILURES = env_int("STEPUP_MAX_FAILURES", 5, minimum=1)
STEPUP_SMS_COOLDOWN_SECONDS = env_int("STEPUP_SMS_COOLDOWN_SECONDS", 60, minimum=1)
STEPUP_SMS_DAILY_PER_SUBJECT = env_int("STEPUP_SMS_DAILY_PER_SUBJECT", 5, minimum=1)
STEPUP_SMS_DAILY_PER_PHONE = env_int("STEPUP_SMS_DAILY_PER_PHONE", 10, minimum=1)

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

# --- webhooks (issue 14: events to merchants' endpoints, webhooks.services) ---------------------------------
# Each POST times out after this long (connect at most 5 s of it); redirects are never followed.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Retries: the first after this long, doubling, each wait at most the cap, until the window after the event.
WEBHOOK_RETRY_FIRST_SECONDS = env_int("WEBHOOK_RETRY_FIRST_SECONDS", 10, minimum=1)
WEBHOOK_RETRY_MAX_INTERVAL_SECONDS = env_int("WEBHOOK_RETRY_MAX_INTERVAL_SECONDS", 3600, minimum=1)
WEBHOOK_RETRY_WINDOW_SECONDS = env_int("WEBHOOK_RETRY_WINDOW_SECONDS", 24 * 3600, minimum=60)
# How long a worker owns a delivery while it sends it; a killed worker's claim expires and another sends it.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 2 * WEBHOOK_TIMEOUT_SECONDS + 30, minimum=5)
# An endpoint is disabled (and its merchant notified) after this many failed attempts in a row spanning at
# least this long.
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1)
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 24 * 3600, minimum=0)
# Loopback / private destinations (and plain http) only in development and the test suite; production refuses
# them at registration and again, after resolving the name, before every attempt (SSRF).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = (DEBUG or TESTING) and env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", True)
# The net under the delivery messages (a retry is a message with a countdown): lost messages, killed workers.
CELERY_BEAT_SCHEDULE["webhooks-deliver-due"] = {
    "task": "webhooks.deliver_due",
    "schedule": env_int("WEBHOOK_SWEEP_INTERVAL_SECONDS", 60, minimum=1),
}

# --- personal data at rest (security issue: field encryption, config.crypto) --------------------------------
# AES-256 keys for ID, phone and account numbers: base64 of 32 random bytes, comma-separated, newest first. An
# older key keeps decrypting until `manage.py pii_rotate_keys` has re-encrypted every row with the newest one.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
# HMAC-SHA256 key of the lookup columns and the risk engine's link keys (one key; never rotated in place).
FIELD_HASH_KEY = env_str("FIELD_HASH_KEY", "")
# Publicly known development keys only outside production (DJANGO_DEBUG=1, the demo, the test suite).
# Production refuses to start without real keys (here, in `manage.py check`, and at first use: config.crypto).
FIELD_ENCRYPTION_DEV_KEYS = not PRODUCTION
if PRODUCTION and not (FIELD_ENCRYPTION_KEYS and FIELD_HASH_KEY):
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS and FIELD_HASH_KEY must be set with DJANGO_DEBUG=0: they encrypt and index ID, "
        "phone and card numbers. Generate each with "
        "`python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'`"
    )


# --- production refuses to start unsafe (DJANGO_DEBUG=0 outside the test suite) ---------------------------
def _production_problems() -> list[str]:
    problems = []
    if SMS_PROVIDER != "aliyun":
        problems.append(
            "SMS_PROVIDER must be aliyun in production (step-up codes must reach the merchant's phone): set "
            "SMS_PROVIDER=aliyun and ALIYUN_SMS_ACCESS_KEY_ID, ALIYUN_SMS_ACCESS_KEY_SECRET, ALIYUN_SMS_SIGN_NAME, "
            "ALIYUN_SMS_TEMPLATE_CODE"
        )
    else:
        missing = [
            name
            for name, value in (
                ("ALIYUN_SMS_ACCESS_KEY_ID", ALIYUN_SMS_ACCESS_KEY_ID),
                ("ALIYUN_SMS_ACCESS_KEY_SECRET", ALIYUN_SMS_ACCESS_KEY_SECRET),
                ("ALIYUN_SMS_SIGN_NAME", ALIYUN_SMS_SIGN_NAME),
                ("ALIYUN_SMS_TEMPLATE_CODE", ALIYUN_SMS_TEMPLATE_CODE),
            )
            if not value
        ]
        if missing:
            problems.append(f"SMS_PROVIDER=aliyun needs {', '.join(missing)}")
        endpoint = urlsplit(ALIYUN_SMS_ENDPOINT)
        if endpoint.scheme != "https" and endpoint.hostname not in {"127.0.0.1", "localhost", "::1"}:
            problems.append(
                f"ALIYUN_SMS_ENDPOINT={ALIYUN_SMS_ENDPOINT!r} must be https:// (plain http only on loopback)"
            )
    if FACE_PROVIDER == "sandbox":
        problems.append("FACE_PROVIDER=sandbox passes anyone who asks it to: leave it empty in production")
    return problems


if PRODUCTION and (_problems := _production_problems()):
    raise ImproperlyConfigured("refusing to start in production (DJANGO_DEBUG=0): " + "; ".join(_problems))
