"""End-to-end tests: a real ``qcluster`` subprocess against PostgreSQL (``-m e2e``)."""
