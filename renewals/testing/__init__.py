"""Helpers for the tests of a site that uses django-renewals; the package's own tests and
benchmarks use them too.

- :mod:`renewals.testing.factories`: terms and consent evidence with sensible defaults, to
  start subscriptions through :func:`renewals.services.subscribe` as a checkout would.
- :mod:`renewals.testing.stripe`: :class:`~renewals.testing.stripe.FakeStripe`, a fake Stripe
  API under the real SDK, and builders of Stripe's objects and events.
"""
