from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    verbose_name = _("Example project")
    default_auto_field = "django.db.models.BigAutoField"
