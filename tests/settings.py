"""Settings for the test suite: SQLite by default, PostgreSQL when DATABASE_URL is set."""

import os
from typing import Any

import dj_database_url

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
ALLOWED_HOSTS = ["testserver", "localhost"]

DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite:///:memory:")),
}
# A suffix keeps parallel runs on one PostgreSQL server out of each other's test database.
if "sqlite" not in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["TEST"] = {"NAME": "test_renewals" + os.environ.get("TEST_DB_SUFFIX", "")}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_q",
    "notifications",
    "renewals",
    "example_project",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
# Django's live server (the browser tests) serves static files under this prefix.
STATIC_URL = "static/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

Q_CLUSTER = {"name": "tests", "orm": "default", "sync": True, "timeout": 60, "retry": 120}

RENEWALS: dict[str, Any] = {"BASE_URL": "https://shop.example"}
NOTIFICATIONS: dict[str, Any] = {
    "BACKENDS": {
        "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
        # Django's mail: pytest-django's locmem mail backend, read as django.core.mail.outbox.
        "email": {"BACKEND": "notifications.backends.email.EmailBackend"},
    },
}
