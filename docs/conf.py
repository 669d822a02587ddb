"""Sphinx configuration for the django-renewals manual (Markdown pages through MyST).

The API reference is generated from the docstrings (``sphinx.ext.autodoc``), so Django is set
up here with the smallest settings that import both apps; nothing touches a database.
"""

import sys
from pathlib import Path

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
settings.configure(
    SECRET_KEY="docs",
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django_q",
        "notifications",
        "renewals",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    Q_CLUSTER={"orm": "default", "timeout": 60, "retry": 120},
)
django.setup()

project = "django-renewals"
author = "django-renewals contributors"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "django-renewals"
