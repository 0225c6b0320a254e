"""Ad-hoc sync of one device an agent names before any sync brought it in."""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from bastion.activation.models import AdhocLookup
from bastion.inventory.models import Device
from bastion.mdm.connectors.base import DeviceRecord, MdmError
from bastion.mdm.models import Integration
from bastion.mdm.services import connector_for
from bastion.mdm.sync import sync_one_device

log = logging.getLogger(__name__)

CORE_UUID = "core_uuid"
CLOUD_ID = "cloud_id"
CLOUD_UDID = "cloud_udid"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
# iOS UDIDs: 40 hex digits (older devices) or 8-16 hex digits with a dash (newer ones).
_UDID = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{8}-[0-9a-fA-F]{16})$")

KIND_OF_PRODUCT = {
    CORE_UUID: Integration.CORE,
    CLOUD_ID: Integration.CLOUD,
    CLOUD_UDID: Integration.CLOUD,
}
# What the connector's find_device calls each kind of id.
LOOKUP_KIND = {CORE_UUID: "uuid", CLOUD_ID: "mdm_id", CLOUD_UDID: "udid"}

# Lookups per tenant per minute, and how long one lookup may take.
DEFAULT_PER_MINUTE = 20
DEFAULT_TIMEOUT = 5


def classify(mdm_id: str) -> tuple[str, str] | None:
    """(kind, normalised id) for a Core UUID, a Cloud device id or a Cloud UDID, or None."""
    if not isinstance(mdm_id, str):
        return None
    value = mdm_id.strip()
    if _UUID.match(value):
        return CORE_UUID, value.lower()
    if _DIGITS.match(value):
        return CLOUD_ID, str(int(value))
    if _UDID.match(value):
        return CLOUD_UDID, value.upper()
    return None


def known_devices(tenant, integrations, kind: str, value: str):
    from bastion import crypto

    query = Device.objects.filter(tenant=tenant, integration__in=integrations).exclude(
        state=Device.REMOVED
    )
    if kind == CLOUD_UDID:
        return query.filter(udid_hash=crypto.identity_hash(value))
    if kind == CORE_UUID:
        return query.filter(mdm_id__in={value, value.upper()})
    return query.filter(mdm_id=value)


class RateLimited(Exception):
    pass


class MdmUnavailable(Exception):
    pass


class Ambiguous(Exception):
    pass


@dataclass
class Found:
    integration: Integration
    record: DeviceRecord


def take_slot(tenant, now=None) -> None:
    """Counts one lookup against the tenant's budget; raises RateLimited past it."""
    now = now or timezone.now()
    limit = getattr(settings, "BASTION_ADHOC_SYNCS_PER_MINUTE", DEFAULT_PER_MINUTE)
    recent = AdhocLookup.objects.filter(tenant=tenant, created_at__gt=now - timedelta(minutes=1))
    if recent.count() >= limit:
        log.warning("ad-hoc lookups rate-limited tenant=%s", tenant.pk)
        raise RateLimited()
    AdhocLookup.objects.create(tenant=tenant, created_at=now)


def look_up(tenant, integrations: list[Integration], kind: str, value: str) -> Found | None:
    """Asks each integration's MDM for the device, within a short time limit.

    Raises Ambiguous when two integrations report it, MdmUnavailable when none found it
    and at least one could not answer.
    """
    take_slot(tenant)
    timeout = getattr(settings, "BASTION_ADHOC_TIMEOUT", DEFAULT_TIMEOUT)
    found: list[Found] = []
    failed = False
    for integration in integrations:
        connector = connector_for(integration, timeout=timeout, retries=0)
        try:
            record = connector.find_device(integration.space_id, value, LOOKUP_KIND[kind])
        except MdmError as error:
            log.warning(
                "ad-hoc lookup failed integration=%s error=%s", integration.pk, type(error).__name__
            )
            failed = True
            continue
        finally:
            connector.close()
        if record is not None and record.active:
            found.append(Found(integration, record))

    if len(found) > 1:
        raise Ambiguous()
    if not found and failed:
        raise MdmUnavailable()
    return found[0] if found else None


def bring_in(found: Found) -> Device | None:
    """Syncs the found device into its group; None when no selected group holds it."""
    connector = connector_for(found.integration, retries=0)
    try:
        device = sync_one_device(found.integration, connector, found.record)
    finally:
        connector.close()
    if device is not None:
        log.info("ad-hoc sync device=%s integration=%s", device.pk, found.integration.pk)
    return device


def place_in_default_group(found: Found) -> Device:
    """A device the MDM manages but has not put in a selected group yet.

    It waits in the tenant's Default Group; the next sync moves it to its group once the
    MDM places it there, or removes it if the MDM never does.
    """
    from bastion import crypto
    from bastion.inventory.models import ConsoleGroup

    integration = found.integration
    record = found.record
    device, _ = Device.objects.get_or_create(
        integration=integration,
        mdm_id=record.mdm_id,
        defaults={
            "tenant": integration.tenant,
            "group": ConsoleGroup.default_for(integration.tenant),
            "platform": record.platform,
            "os_version": record.os_version[:128],
            "model": record.model[:128],
            "manufacturer": record.manufacturer[:128],
            "name": record.name[:255],
            "guid": record.guid[:128],
            "serial_hash": crypto.identity_hash(record.serial),
            "udid_hash": crypto.identity_hash(record.udid),
            "last_checkin": record.last_checkin,
            "synced_at": timezone.now(),
        },
    )
    if device.state == Device.REMOVED:
        device.state = Device.WAITING
        device.removed_at = None
        device.group = ConsoleGroup.default_for(integration.tenant)
        device.save(update_fields=["state", "removed_at", "group"])
    return device
