from django.apps import AppConfig


class ThreatsConfig(AppConfig):
    name = "bastion.threats"
    label = "threats"

    def ready(self) -> None:
        from bastion.inventory.signals import device_tombstoned, devices_moved, inventory_fetched
        from bastion.threats.inventory import on_inventory_fetched

        device_tombstoned.connect(on_tombstoned, dispatch_uid="threats-tombstoned")
        devices_moved.connect(on_moved, dispatch_uid="threats-moved")
        inventory_fetched.connect(on_inventory_fetched, dispatch_uid="threats-inventory")


def on_tombstoned(sender, device_ids, **kwargs) -> None:
    from bastion.threats.services import settle_for_devices

    settle_for_devices(device_ids)


def on_moved(sender, moves, **kwargs) -> None:
    from bastion.threats.services import settle_for_devices

    settle_for_devices([device_id for device_id, _old, _new in moves])
