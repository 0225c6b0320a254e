from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "bastion.api"
    label = "api"

    def ready(self):
        from bastion.api import signals  # noqa: F401
