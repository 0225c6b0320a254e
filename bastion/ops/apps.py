from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "bastion.ops"
    label = "ops"
    verbose_name = "Operations: health, metrics, logs"

    def ready(self):
        from bastion.ops import signals

        signals.connect()
