from django.apps import AppConfig


class MdmConfig(AppConfig):
    name = "bastion.mdm"
    label = "mdm"
