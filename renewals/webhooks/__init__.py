"""Endpoints the billing processor calls: verify, store once, hand to the services."""
