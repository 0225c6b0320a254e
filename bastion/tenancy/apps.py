from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "bastion.tenancy"
    label = "tenancy"
