from django.dispatch import receiver

from bastion.api.models import DeviceCredential
from bastion.inventory.signals import device_tombstoned


@receiver(device_tombstoned)
def revoke_credentials(sender, device_ids, **kwargs):
    DeviceCredential.revoke_for(device_ids)
