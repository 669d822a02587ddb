"""The site the benchmarks measure: both apps, Django's session, CSRF, auth and messages
middleware, the ORM broker of django-q2 running tasks in the process (``sync``), and the
locmem notification backends (each script chooses the backends it times).

SQLite in memory by default; PostgreSQL when ``DATABASE_URL`` is set, in a throwaway database
named ``test_renewals`` + ``TEST_DB_SUFFIX`` that each script creates and destroys.
"""

import os

import dj_database_url

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
ALLOWED_HOSTS = ["testserver"]

DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite:///:memory:")),
}
if "sqlite" not in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["TEST"] = {"NAME": "test_renewals" + os.environ.get("TEST_DB_SUFFIX", "")}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_q",
    "notifications",
    "renewals",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "bench.urls"

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

Q_CLUSTER = {"name": "bench", "orm": "default", "sync": True, "timeout": 60, "retry": 120}

RENEWALS = {"BASE_URL": "https://shop.example"}
NOTIFICATIONS = {
    "BACKENDS": {
        "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    },
}
