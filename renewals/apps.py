from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RenewalsConfig(AppConfig):
    name = "renewals"
    verbose_name = _("Auto-renewals")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications.models import Delivery
        from notifications.signals import delivery_updated

        from . import checks  # noqa: F401  (registers the system checks)
        from .notice_messages import register_templates
        from .services.notice_state import on_delivery_updated

        register_templates()
        delivery_updated.connect(
            on_delivery_updated, sender=Delivery, dispatch_uid="renewals.notice_evidence"
        )
