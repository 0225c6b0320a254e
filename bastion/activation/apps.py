from django.apps import AppConfig


class ActivationConfig(AppConfig):
    name = "bastion.activation"
    label = "activation"
