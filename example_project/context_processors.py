"""What the demo's page header shows on every page."""

from django.conf import settings
from django.http import HttpRequest

from . import demo_clock


def demo_clock_reading(request: HttpRequest) -> dict[str, object]:
    """``demo_clock``: the demo clock's ``now`` and the real time (``real_now``), while the
    time machine is on (``settings.DEMO_TIME_MACHINE``)."""
    clock = demo_clock.installed()
    if clock is None or not getattr(settings, "DEMO_TIME_MACHINE", False):
        return {}
    real_now = demo_clock.real_now()
    return {"demo_clock": {"now": real_now + clock.offset(), "real_now": real_now}}
