"""What administrators do with integrations, shared by the command line, pages and APIs."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction

from bastion.inventory.models import ConsoleGroup
from bastion.mdm.connectors import get_connector
from bastion.mdm.connectors.base import Connector, MdmGroup
from bastion.mdm.models import Integration
from bastion.mdm.sync import console_group_name
from bastion.ops.metrics import mdm_call_observer
from bastion.tenancy.models import Tenant


class InvalidInput(ValueError):
    """An administrator's input that can't be used; `field` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class IntegrationSettings:
    kind: str
    name: str
    url: str
    username: str
    password: str
    space_id: str = ""
    space_name: str = ""
    sync_users: bool = True
    synced_password: str = ""
    mask_users: bool = False
    email_ios: bool = False
    email_android: bool = False
    sync_interval_minutes: int | None = None
    ca_bundle: str = ""


def connector_for(integration: Integration, **options) -> Connector:
    return build_connector(
        integration.kind,
        integration.url,
        integration.username,
        integration.password,
        ca_bundle=integration.ca_bundle,
        **options,
    )


def build_connector(kind: str, url: str, username: str, password: str, **options) -> Connector:
    options.setdefault("allow_http", settings.BASTION_ALLOW_HTTP_MDM)
    options.setdefault("timeout", settings.BASTION_MDM_TIMEOUT)
    options.setdefault("on_response", mdm_call_observer(kind))
    if not options.get("ca_bundle"):
        options["ca_bundle"] = settings.BASTION_MDM_CA_BUNDLE
    return get_connector(kind, url, username, password, **options)


def validate(tenant: Tenant, values: IntegrationSettings, existing: Integration | None = None):
    if values.kind not in dict(Integration.KINDS):
        raise InvalidInput("kind", "choose MobileIron Core (core) or MobileIron Cloud (cloud)")

    name = values.name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name", "give the MDM a name of 1 to 100 characters")
    clash = Integration.objects.filter(tenant=tenant, name__iexact=name)
    if existing is not None:
        clash = clash.exclude(pk=existing.pk)
    if clash.exists():
        raise InvalidInput("name", f"an MDM named {name!r} already exists in this tenant")

    if not values.url.strip():
        raise InvalidInput("url", "enter the URL of the MDM's API server")
    if not values.username.strip():
        raise InvalidInput("username", "enter the API administrator's username")
    if existing is None and not values.password:
        raise InvalidInput("password", "enter the API administrator's password")
    if values.synced_password and len(values.synced_password) < 8:
        raise InvalidInput("synced_password", "use at least 8 characters")

    interval = values.sync_interval_minutes
    if interval is not None and not 15 <= interval <= 7 * 24 * 60:
        raise InvalidInput("sync_interval_minutes", "choose between 15 minutes and 7 days")


@transaction.atomic
def create_integration(
    tenant: Tenant, values: IntegrationSettings, groups: list[MdmGroup]
) -> Integration:
    validate(tenant, values)
    integration = Integration(
        tenant=tenant,
        kind=values.kind,
        name=values.name.strip(),
        url=values.url.strip().rstrip("/"),
        username=values.username.strip(),
        space_id=values.space_id,
        space_name=values.space_name,
        sync_users=values.sync_users,
        synced_password_hash=make_password(values.synced_password)
        if values.synced_password
        else "",
        mask_users=values.mask_users,
        email_ios=values.email_ios and not tenant.anonymous_users,
        email_android=values.email_android and not tenant.anonymous_users,
        sync_interval_minutes=values.sync_interval_minutes
        or settings.BASTION_SYNC_INTERVAL_MINUTES,
        ca_bundle=values.ca_bundle,
    )
    integration.password = values.password
    integration.save()
    ConsoleGroup.default_for(tenant)
    select_groups(integration, groups)
    return integration


@transaction.atomic
def select_groups(integration: Integration, groups: list[MdmGroup]) -> list[ConsoleGroup]:
    """Makes `groups`, highest priority first, the integration's selection.

    Console groups are kept for deselected MDM groups (with no priority), so their
    history and policy come back if they are selected again.
    """
    ids = [group.id for group in groups]
    if len(set(ids)) != len(ids):
        raise InvalidInput("groups", "a group is selected twice")

    integration.groups.update(priority=None)
    selected = []
    for priority, group in enumerate(groups):
        console, _ = ConsoleGroup.objects.update_or_create(
            integration=integration,
            mdm_group_id=group.id,
            defaults={
                "tenant": integration.tenant,
                "mdm_group_name": group.name[:255],
                "name": console_group_name(integration.name, group.name)[:400],
                "priority": priority,
            },
        )
        selected.append(console)
    return selected


def resolve_groups(listed: list[MdmGroup], wanted: list[str]) -> list[MdmGroup]:
    """Finds the wanted groups, by id or by exact name, in the MDM's listing, in order."""
    by_id = {group.id: group for group in listed}
    by_name = {}
    for group in listed:
        by_name.setdefault(group.name, group)

    found = []
    for entry in wanted:
        group = by_id.get(entry) or by_name.get(entry)
        if group is None:
            offered = ", ".join(repr(g.name) for g in listed[:30])
            raise InvalidInput(
                "groups", f"the MDM has no label or device group {entry!r}; it offers {offered}"
            )
        found.append(group)
    return found


def resolve_space(connector: Connector, wanted: str) -> tuple[str, str]:
    spaces = connector.list_spaces()
    if not wanted:
        default = next(
            (space for space in spaces if space.is_default), spaces[0] if spaces else None
        )
        if default is None:
            raise InvalidInput("space", "the MDM lists no space this account can use")
        return default.id, default.name
    for space in spaces:
        if wanted in (space.id, space.name):
            return space.id, space.name
    names = ", ".join(space.name for space in spaces)
    raise InvalidInput("space", f"no space {wanted!r}; the MDM offers: {names}")


@transaction.atomic
def remove_integration(integration: Integration, undo_actions: bool | None = None) -> int:
    """Removes an integration; its devices stay as tombstones so their history stays.

    `undo_actions` says whether the MDM actions Bastion applied to its devices are undone
    first; None keeps the integration's own setting.
    """
    if undo_actions is not None:
        integration.undo_actions_on_removal = undo_actions
    from django.utils import timezone

    from bastion.inventory.models import Device
    from bastion.mdm.sync import devices_removed
    from bastion.threats.services import settle_device_actions

    ids = list(integration.devices.exclude(state=Device.REMOVED).values_list("pk", flat=True))
    # Undo (or leave) what the MDM was told to do while the integration still exists to
    # deliver the undo: once it is deleted there is no MDM to call.
    settle_device_actions(ids, undo=integration.undo_actions_on_removal, deliver_now=True)
    Device.objects.filter(pk__in=ids).update(state=Device.REMOVED, removed_at=timezone.now())
    devices_removed(ids)
    integration.groups.update(priority=None)
    integration.delete()
    return len(ids)
