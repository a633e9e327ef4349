"""Settings shared by every environment; the environment modules import this."""

from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF
from django.contrib.messages import constants as messages

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

INSTALLED_APPS = [
    "user",
    "mailinglist",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "django_celery_results",
    "anymail",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "user.middleware.UserTimeZoneMiddleware",
    "user.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Every script and style comes from Mail Ape's own static files; nothing inline runs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}

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
        },
    },
]

AUTH_USER_MODEL = "user.User"
LOGIN_URL = "user:login"
LOGIN_REDIRECT_URL = "mailinglist:mailinglist_list"
LOGOUT_REDIRECT_URL = "user:login"

AUTHENTICATION_BACKENDS = ["user.backends.LockoutModelBackend"]
# Failed logins that lock a username out for 15 minutes: from one client address, and
# from all addresses together (see user/login_limits.py).
MAIL_APE_LOGIN_MAX_FAILURES = env_int("MAIL_APE_LOGIN_MAX_FAILURES", 10)
MAIL_APE_LOGIN_MAX_FAILURES_PER_USERNAME = env_int("MAIL_APE_LOGIN_MAX_FAILURES_PER_USERNAME", 100)
# Failed API authentications (any username or token) from one address, per 15 minutes.
MAIL_APE_API_AUTH_MAX_FAILURES_PER_ADDRESS = env_int(
    "MAIL_APE_API_AUTH_MAX_FAILURES_PER_ADDRESS", 30
)
# The public subscribe form: subscriptions per client address and per list, and
# confirmation e-mails to one address over all lists (however they were asked for).
MAIL_APE_SUBSCRIBE_RATE_PER_CLIENT = env_str("MAIL_APE_SUBSCRIBE_RATE_PER_CLIENT", "20/hour")
MAIL_APE_SUBSCRIBE_RATE_PER_LIST = env_str("MAIL_APE_SUBSCRIBE_RATE_PER_LIST", "1000/hour")
# Nobody can make Mail Ape flood an inbox with password reset e-mails.
MAIL_APE_PASSWORD_RESETS_PER_CLIENT = env_str("MAIL_APE_PASSWORD_RESETS_PER_CLIENT", "10/hour")
MAIL_APE_PASSWORD_RESETS_PER_ADDRESS = env_str("MAIL_APE_PASSWORD_RESETS_PER_ADDRESS", "3/hour")
MAIL_APE_CONFIRMATIONS_PER_ADDRESS = env_str("MAIL_APE_CONFIRMATIONS_PER_ADDRESS", "3/hour")
# Test sends an owner may ask for (each to up to 10 addresses).
MAIL_APE_TEST_SENDS_PER_OWNER = env_str("MAIL_APE_TEST_SENDS_PER_OWNER", "20/hour")
# Proxies in front of Mail Ape that append the client's address to X-Forwarded-For
# (AWS's load balancer is one); the entry that many from the end is the client.
MAIL_APE_TRUSTED_PROXY_HOPS = env_int("MAIL_APE_TRUSTED_PROXY_HOPS", 0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MESSAGE_TAGS = {messages.ERROR: "danger"}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

MAIL_APE_FROM_EMAIL = env_str("MAIL_APE_FROM_EMAIL", "mailape@localhost")
# The domains a list may send from (its from address); empty allows any.
MAIL_APE_ALLOWED_FROM_DOMAINS = env_list("MAIL_APE_ALLOWED_FROM_DOMAINS", [])
DEFAULT_FROM_EMAIL = MAIL_APE_FROM_EMAIL
SERVER_EMAIL = MAIL_APE_FROM_EMAIL
# Scheme, host and (where not the default) port of the links put in e-mails.
MAILING_LIST_LINK_DOMAIN = env_str("MAILING_LIST_LINK_DOMAIN", "http://localhost:8000")
# Optional mailto: address offered in List-Unsubscribe beside the https URL.
MAIL_APE_UNSUBSCRIBE_MAILTO = env_str("MAIL_APE_UNSUBSCRIBE_MAILTO", "")

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_HOST_PORT", 1025)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_HOST_TLS", False)
EMAIL_TIMEOUT = 30

# A confirmation link is good for a week; an unsubscribe link never expires
# because old e-mails must keep working.
MAIL_APE_CONFIRMATION_MAX_AGE = env_int("MAIL_APE_CONFIRMATION_MAX_AGE", 7 * 24 * 3600)

# Delivery pipeline.
MAIL_APE_BATCH_SIZE = env_int("MAIL_APE_BATCH_SIZE", 500)
# A live worker renews its rows' lease several times a lease (delivery/leases.py);
# a dead one's rows are due again within a lease, and the sweep hands them on.
MAIL_APE_DELIVERY_LEASE_SECONDS = env_int("MAIL_APE_DELIVERY_LEASE_SECONDS", 6)
MAIL_APE_DELIVERY_TASK_SECONDS = env_int("MAIL_APE_DELIVERY_TASK_SECONDS", 60)
MAIL_APE_DELIVERY_PARALLELISM = env_int("MAIL_APE_DELIVERY_PARALLELISM", 4)
MAIL_APE_MAX_ATTEMPTS = env_int("MAIL_APE_MAX_ATTEMPTS", 6)
MAIL_APE_RETRY_BASE_SECONDS = env_int("MAIL_APE_RETRY_BASE_SECONDS", 60)
MAIL_APE_SWEEP_SECONDS = env_int("MAIL_APE_SWEEP_SECONDS", 2)
# How often scheduled messages whose time has come are handed to delivery.
MAIL_APE_SCHEDULER_SECONDS = env_int("MAIL_APE_SCHEDULER_SECONDS", 10)
# How often work that waited in the outbox while the broker was down is handed over.
MAIL_APE_RELAY_SECONDS = env_int("MAIL_APE_RELAY_SECONDS", 10)
# E-mails per second across every worker; 0 leaves sending unthrottled.
MAIL_APE_SEND_RATE = env_int("MAIL_APE_SEND_RATE", 0)
MAIL_APE_RATE_LIMIT_REDIS_URL = env_str("MAIL_APE_RATE_LIMIT_REDIS_URL", "")
# Where each copy the SMTP server accepts is noted at once (delivery/journal.py), so
# a worker that dies sends almost nothing twice; the Redis broker when unset.
MAIL_APE_DELIVERY_JOURNAL_REDIS_URL = env_str("MAIL_APE_DELIVERY_JOURNAL_REDIS_URL", "")
# Subscriber imports: the biggest file accepted, the rows committed together, and how
# long a job may go without a committed batch before the sweep hands it to another worker.
MAIL_APE_IMPORT_MAX_BYTES = env_int("MAIL_APE_IMPORT_MAX_BYTES", 256 * 1024 * 1024)
MAIL_APE_IMPORT_BATCH_ROWS = env_int("MAIL_APE_IMPORT_BATCH_ROWS", 5000)
MAIL_APE_IMPORT_STALL_SECONDS = env_int("MAIL_APE_IMPORT_STALL_SECONDS", 120)

# The sender's reputation. A VERP envelope sender under MAIL_APE_BOUNCE_ADDRESS lets
# `manage.py process_bounce` tie a mailed report to its copy; providers' webhooks under
# /anymail/ need MAIL_APE_WEBHOOK_SECRET ("user:password" in the webhook's URL).
MAIL_APE_BOUNCE_ADDRESS = env_str("MAIL_APE_BOUNCE_ADDRESS", "")
MAIL_APE_WEBHOOK_SECRET = env_str("MAIL_APE_WEBHOOK_SECRET", "")
MAIL_APE_MAILGUN_WEBHOOK_SIGNING_KEY = env_str("MAIL_APE_MAILGUN_WEBHOOK_SIGNING_KEY", "")
# Amazon SES: the configuration set whose bounce and complaint events go to the webhook.
MAIL_APE_SES_CONFIGURATION_SET = env_str("MAIL_APE_SES_CONFIGURATION_SET", "")
# Soft bounces on this many distinct messages within the window suppress an address.
MAIL_APE_SOFT_BOUNCE_LIMIT = env_int("MAIL_APE_SOFT_BOUNCE_LIMIT", 3)
MAIL_APE_SOFT_BOUNCE_WINDOW_DAYS = env_int("MAIL_APE_SOFT_BOUNCE_WINDOW_DAYS", 30)
# A message going out is paused once hard bounces pass this share of its attempted
# copies (after the minimum), or complaints pass theirs: providers suspend senders
# not far above these.
MAIL_APE_PAUSE_BOUNCE_RATE = env_float("MAIL_APE_PAUSE_BOUNCE_RATE", 0.05)
MAIL_APE_PAUSE_MIN_ATTEMPTS = env_int("MAIL_APE_PAUSE_MIN_ATTEMPTS", 200)
MAIL_APE_PAUSE_COMPLAINT_RATE = env_float("MAIL_APE_PAUSE_COMPLAINT_RATE", 0.001)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = env_str("MAIL_APE_CELERY_QUEUE", "mailape")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
# Longer than the longest task, so a running task is never handed to a second worker.
# A publish that finds the broker down fails at once instead of retrying for seconds
# while a visitor waits: the outbox (mailinglist.queueing) keeps the task for later.
FAIL_FAST_PUBLISHING = {"max_retries": 0}
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    **FAIL_FAST_PUBLISHING,
    "visibility_timeout": 3600,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-deliveries": {
        "task": "mailinglist.tasks.requeue_stalled_deliveries",
        "schedule": MAIL_APE_SWEEP_SECONDS,
    },
    "start-due-messages": {
        "task": "mailinglist.tasks.start_due_messages",
        "schedule": MAIL_APE_SCHEDULER_SECONDS,
    },
    "resume-stalled-imports": {
        "task": "mailinglist.tasks.resume_stalled_imports",
        "schedule": MAIL_APE_SWEEP_SECONDS,
    },
    "relay-queued-tasks": {
        "task": "mailinglist.tasks.relay_queued_tasks",
        "schedule": MAIL_APE_RELAY_SECONDS,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "user.authentication.LockoutBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "user.authentication.LimitedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["mailinglist.api.errors.NestingLimitedJSONParser"],
    "EXCEPTION_HANDLER": "mailinglist.api.errors.handle_api_exception",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "mailinglist.api.pagination.LinkHeaderPagination",
    # Counters live in the default cache, which every web process shares.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("MAIL_APE_API_USER_RATE", "60/minute"),
        "anon": env_str("MAIL_APE_API_ANON_RATE", "30/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "NUM_PROXIES": MAIL_APE_TRUSTED_PROXY_HOPS,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Mail Ape API",
    "DESCRIPTION": (
        "Mailing lists, subscribers and messages. Authenticate with HTTP Basic, a session "
        "or `Authorization: Token <key>` (create one under /user/tokens). Collections are "
        "JSON arrays paged with RFC 8288 `Link` headers."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from our own static files, so the docs work without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # A message's status: any state when read, fewer when written.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": ["draft", "scheduled", "sending", "paused", "cancelled", "finished"],
        "NewMessageStatusEnum": ["draft", "scheduled", "sending"],
        "MessageChangeStatusEnum": ["draft", "scheduled"],
        "SubscriberStatusEnum": ["confirmed", "unconfirmed", "unsubscribed", "bounced"],
        "SuppressionReasonEnum": "mailinglist.models.SuppressionReason",
        "ImportStatusEnum": "mailinglist.imports.states.ImportState",
        "ImportedStatusEnum": "mailinglist.imports.states.ImportedStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mailinglist.api.schema.document_errors",
    ],
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}
