from django.apps import AppConfig


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    verbose_name = "Example project"
    default_auto_field = "django.db.models.BigAutoField"
