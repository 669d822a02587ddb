"""Settings of the ``qcluster`` subprocess that the end-to-end tests start.

It works on the test database the pytest process created, named in ``E2E_DATABASE_NAME``.
``E2E_BROKER`` is ``orm`` or ``redis`` (at ``E2E_REDIS_URL``); ``E2E_SWEEP_BATCH_SIZE`` and
``E2E_SEND_DELAY`` (seconds a message) are passed to :mod:`tests.e2e.config`.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from tests.e2e import config
from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, Q_CLUSTER

_database = os.environ.get("E2E_DATABASE_NAME", "")
if not _database.startswith("test_"):
    raise ImproperlyConfigured(
        f"E2E_DATABASE_NAME must name a test database (test_...), got {_database!r}."
    )
DATABASES["default"]["NAME"] = _database

_broker = (
    {"orm": "default"}
    if os.environ.get("E2E_BROKER", "orm") == "orm"
    else {"redis": os.environ["E2E_REDIS_URL"]}
)
Q_CLUSTER = {
    # The name salts signed task packages: the pytest process, which enqueues, uses it too.
    "name": Q_CLUSTER["name"],
    # The queue: one per test database, so that parallel runs on one Redis keep apart.
    "cluster_name": _database,
    **_broker,
    "workers": 2,
    "timeout": 60,
    "retry": 90,
    "poll": 0.1,
    "guard_cycle": 0.2,
    "catch_up": False,
}

RENEWALS = config.renewals(int(os.environ.get("E2E_SWEEP_BATCH_SIZE", "50")))
NOTIFICATIONS = config.notifications(float(os.environ.get("E2E_SEND_DELAY", "0")))
