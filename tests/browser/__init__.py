"""Browser tests: the example project's and the package's pages in Debian's chromium, driven
by pytest-playwright against Django's live server (``-m browser``, part of ``-m e2e``)."""
