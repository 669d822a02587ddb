"""A small membership site that uses django-renewals. SQLite, no keys needed.

Stripe mode turns on when ``STRIPE_SECRET_KEY`` is in the environment (see the end).
"""

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "example-project-not-secret"  # a demo, never deployed
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en"
# The languages the package ships; LocaleMiddleware picks one per request (the language
# switch in the page header, else the browser's Accept-Language).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]

# The site, the qcluster and the demo commands write to one file: a write transaction takes
# the lock when it begins and waits for it, rather than failing with "database is locked".
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "notifications",
    "renewals",
    "example_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "example_project.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
# Sessions in signed cookies expire by the real clock, so the time machine, which moves the
# demo's clock days ahead, signs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
STATIC_URL = "static/"

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
                "example_project.context_processors.demo_clock_reading",
            ]
        },
    }
]

# The ORM broker on the demo's own database; the schedules (renewals_schedules) are sweeps,
# so a cluster that was stopped runs each once when it starts, not once per missed interval.
Q_CLUSTER = {
    "name": "example",
    "orm": "default",
    "workers": 1,
    "timeout": 60,
    "retry": 120,
    "catch_up": False,
}

RENEWALS: dict[str, Any] = {
    "DEFAULT_POLICY": "cn",
    "BASE_URL": "http://" + os.environ.get("DEMO_ADDR", "127.0.0.1:8000"),
}
# No provider: every SMS, push and email is stored as an OutboxMessage (see the admin).
NOTIFICATIONS = {
    "BACKENDS": {
        "sms": {"BACKEND": "notifications.backends.database.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.database.PushBackend"},
        "email": {"BACKEND": "notifications.backends.database.EmailBackend"},
    },
    "RECIPIENT_RESOLVER": "example_project.recipients.resolve_recipient",
}

# Stripe mode: with a test-mode secret key in the environment, new subscriptions are billed
# by Stripe at the prices named here, paid with Stripe's test card (the example has no card
# form), and Stripe's webhook (stripe/webhook/) keeps them in step. See docs/stripe.md.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
if STRIPE_SECRET_KEY:
    if not STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_")):
        raise ImproperlyConfigured(
            "The example project runs Stripe in test mode only (it pays with Stripe's test "
            "card): STRIPE_SECRET_KEY must be a test key, sk_test_... or rk_test_...."
        )
    EXAMPLE_STRIPE_PRICES = {
        "monthly": os.environ.get("STRIPE_PRICE_MONTHLY", ""),
        "yearly": os.environ.get("STRIPE_PRICE_YEARLY", ""),
    }
    missing = [
        f"STRIPE_PRICE_{plan.upper()}" for plan, price in EXAMPLE_STRIPE_PRICES.items() if not price
    ]
    if missing:
        raise ImproperlyConfigured(
            f"Stripe mode needs the Stripe price of each plan: set {' and '.join(missing)} "
            "(price_..., in test mode: 25.00 CNY a month, 238.00 CNY a year)."
        )
    RENEWALS["GATEWAY"] = {
        "BACKEND": "renewals.gateways.stripe.StripeGateway",
        "OPTIONS": {
            "api_key": STRIPE_SECRET_KEY,
            # From the dashboard's endpoint, or as `stripe listen` prints it.
            "webhook_secret": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        },
    }

# Demo only: the time machine (a button in the page header and `manage.py
# demo_time_machine`) moves the demo's clock to the next reminder. The clock's offset is kept
# in this file; delete it together with the database to start afresh. Off in Stripe mode,
# whose clock is Stripe's.
DEMO_TIME_MACHINE = not STRIPE_SECRET_KEY
DEMO_CLOCK_FILE = BASE_DIR / "demo_clock"
