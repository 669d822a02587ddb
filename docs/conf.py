"""Sphinx configuration for the django-renewals manual (Markdown pages through MyST)."""

project = "django-renewals"
author = "django-renewals contributors"
extensions = ["myst_parser"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "django-renewals"
