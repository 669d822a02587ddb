"""A small membership site that uses django-renewals. SQLite, no keys needed."""

import os
from pathlib import Path

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
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
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

RENEWALS = {
    "DEFAULT_POLICY": "cn",
    "BASE_URL": "http://" + os.environ.get("DEMO_ADDR", "127.0.0.1:8000"),
}
# No provider: every SMS and push is stored as an OutboxMessage (see the admin).
NOTIFICATIONS = {
    "BACKENDS": {
        "sms": {"BACKEND": "notifications.backends.database.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.database.PushBackend"},
    },
    "RECIPIENT_RESOLVER": "example_project.recipients.resolve_recipient",
}
