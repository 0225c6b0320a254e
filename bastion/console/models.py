from django.db import models

from bastion.tenancy.models import Tenant


class ConsoleSettings(models.Model):
    """What a tenant chooses about its console pages, apart from the tenant itself."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="console")
    # Devices below these versions are highlighted on the OS risk page; "" sets no minimum.
    min_ios_version = models.CharField(max_length=32, blank=True)
    min_android_version = models.CharField(max_length=32, blank=True)

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "ConsoleSettings":
        settings, _ = cls.objects.get_or_create(tenant=tenant)
        return settings

    def minimum_for(self, platform: str) -> str:
        return self.min_ios_version if platform == "ios" else self.min_android_version


class SignInFailure(models.Model):
    """One failed console sign-in; recent rows decide whether an account or address is locked."""

    username = models.CharField(max_length=150, db_index=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
