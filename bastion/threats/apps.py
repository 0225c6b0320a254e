from django.apps import AppConfig


class ThreatsConfig(AppConfig):
    name = "bastion.threats"
    label = "threats"
