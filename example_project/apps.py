from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    verbose_name = _("Example project")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """With ``settings.DEMO_TIME_MACHINE`` on, time in this process runs on the demo's
        clock (:mod:`example_project.demo_clock`), kept in ``settings.DEMO_CLOCK_FILE``."""
        if not getattr(settings, "DEMO_TIME_MACHINE", False):
            return
        path = getattr(settings, "DEMO_CLOCK_FILE", None)
        if not path:
            raise ImproperlyConfigured(
                "DEMO_TIME_MACHINE is on but DEMO_CLOCK_FILE is not set: name the file that "
                "keeps the demo clock's offset, e.g. BASE_DIR / 'demo_clock'."
            )
        from . import demo_clock

        demo_clock.install(Path(path))
