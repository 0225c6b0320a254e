from django.apps import AppConfig


class ActivationConfig(AppConfig):
    name = "bastion.activation"
    label = "activation"

    def ready(self) -> None:
        # Connects the sync's devices_added signal to the activation email outbox.
        from bastion.activation import emails  # noqa: F401
