"""Threats from the inventory: iOS profiles qualified after each complete profile fetch,
administrators' trust and distrust, and apps marked malicious.

The sync calls `on_inventory_fetched` from its write transaction with what changed on the
devices whose inventory it fetched; views, the admin API and the command line call the
decision functions, which take the tenant and audit what they did.
"""

import logging
import re

from django.db import transaction

from bastion.inventory.models import App, Device, DeviceApp, DeviceProfile, Profile
from bastion.mdm.services import InvalidInput
from bastion.tenancy.models import AuditEntry, Tenant
from bastion.threats.inventory_events import (
    APP,
    PROFILE,
    Finding,
    active_events,
    mitigate_events,
    raise_findings,
)
from bastion.threats.inventory_models import MaliciousApp

log = logging.getLogger(__name__)

SUSPICIOUS_PROFILE = "suspicious_profile"
UNTRUSTED_PROFILE = "untrusted_profile"
MALICIOUS_APP = "malicious_app"
PROFILE_THREAT = {Profile.SUSPICIOUS: SUSPICIOUS_PROFILE, Profile.UNTRUSTED: UNTRUSTED_PROFILE}

IDENTIFIER_MAX = 255
REASON_MAX = 500
CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class UnknownObject(InvalidInput):
    """The profile or mark named does not exist in this tenant."""


# The sync's hook.


def on_inventory_fetched(sender, integration, kind, device_ids, before, after, **kwargs):
    if kind == "profiles":
        profiles_fetched(integration.tenant_id, device_ids, before, after)
    elif kind == "apps":
        apps_fetched(integration.tenant_id, device_ids, before, after)


def protected(tenant_id: int, device_ids) -> set[int]:
    """The devices whose agent is active. Inventory threats are raised for them only, as
    for agents' reports; a device that activates later raises at its next fetch (or at
    once through `raise_for_devices`)."""
    devices = Device.objects.filter(tenant_id=tenant_id, pk__in=list(device_ids))
    return set(devices.filter(state=Device.ACTIVE).values_list("pk", flat=True))


def profiles_fetched(tenant_id: int, device_ids, before: list[tuple], after: list[tuple]):
    """After a complete profile fetch of these devices: a profile the MDM now installs is
    trusted unless an administrator decided otherwise; a protected device carrying a
    suspicious or untrusted profile has that threat open (raised once: an open one is
    kept); a profile gone from a device mitigates its threat there."""
    has = {(device_id, profile_id) for device_id, profile_id, _ in after}
    removed = set(before) - has
    managed_now = {profile_id for _, profile_id, by_mdm in after if by_mdm}
    guarded = protected(tenant_id, device_ids) if has else set()
    carried = {(d, p) for d, p in has if d in guarded}
    wanted = {profile_id for _, profile_id in carried} | managed_now
    if not wanted and not removed:
        return

    profiles = {
        pk: (managed, status, identifier)
        for pk, managed, status, identifier in Profile.objects.filter(
            tenant_id=tenant_id, pk__in=wanted
        ).values_list("pk", "managed", "status", "identifier")
    }
    promoted = _promote_managed(tenant_id, [pk for pk in managed_now if not profiles[pk][0]])
    for pk in promoted:
        profiles[pk] = (True, Profile.TRUSTED, profiles[pk][2])

    findings = []
    for device_id, profile_id in sorted(carried):
        _, status, identifier = profiles[profile_id]
        threat_id = PROFILE_THREAT.get(status)
        if threat_id:
            details = _profile_details(profile_id, identifier)
            findings.append(Finding(device_id, threat_id, PROFILE, profile_id, details))
    raise_findings(tenant_id, findings)

    if removed:
        gone = active_events(
            tenant_id, PROFILE, {p for _, p in removed}, device_ids={d for d, _ in removed}
        )
        mitigate_events(tenant_id, [pk for pk, device_id, p in gone if (device_id, p) in removed])


def _promote_managed(tenant_id: int, profile_ids: list[int]) -> list[int]:
    """Profiles the MDM now installs: typed managed; a suspicious one (no administrator
    decided about it) becomes trusted and its suspicious-profile threats end."""
    if not profile_ids:
        return []
    Profile.objects.filter(tenant_id=tenant_id, pk__in=profile_ids).update(managed=True)
    suspicious = Profile.objects.filter(
        tenant_id=tenant_id, pk__in=profile_ids, status=Profile.SUSPICIOUS
    )
    promoted = list(suspicious.values_list("pk", flat=True))
    if not promoted:
        return []
    Profile.objects.filter(pk__in=promoted, status=Profile.SUSPICIOUS).update(
        status=Profile.TRUSTED
    )
    gone = active_events(tenant_id, PROFILE, promoted, threats=[SUSPICIOUS_PROFILE])
    mitigate_events(tenant_id, [pk for pk, _, _ in gone])
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                tenant_id=tenant_id,
                actor="system",
                action="profile.trust",
                object_type="profile",
                object_id=str(pk),
                detail={"from": Profile.SUSPICIOUS, "reason": "now installed by the MDM"},
            )
            for pk in promoted
        ]
    )
    log.info("profiles trusted as managed count=%s tenant=%s", len(promoted), tenant_id)
    return promoted


def apps_fetched(tenant_id: int, device_ids, before: list[tuple], after: list[tuple]):
    """A protected device carrying a marked app has a malicious-app threat open; a marked
    app gone from a device mitigates its threat there."""
    marks = set()
    if after:
        marks = set(
            MaliciousApp.objects.filter(tenant_id=tenant_id).values_list("platform", "identifier")
        )
    if not marks and not before:
        return  # a first fetch with nothing marked: the common case of a first sync
    has = {(device_id, app_id) for device_id, app_id, _ in after}
    removed = set(before) - has

    if marks:
        guarded = protected(tenant_id, device_ids)
        carried = {(d, a) for d, a in has if d in guarded}
        apps = App.objects.filter(
            tenant_id=tenant_id,
            pk__in={app_id for _, app_id in carried},
            identifier__in={identifier for _, identifier in marks},
        ).values_list("pk", "platform", "identifier")
        bad = {pk: (p, i) for pk, p, i in apps if (p, i) in marks}
        findings = [
            Finding(device_id, MALICIOUS_APP, APP, app_id, _app_details(app_id, *bad[app_id]))
            for device_id, app_id in sorted(carried)
            if app_id in bad
        ]
        raise_findings(tenant_id, findings)

    if removed:
        gone = active_events(
            tenant_id, APP, {a for _, a in removed}, device_ids={d for d, _ in removed}
        )
        mitigate_events(tenant_id, [pk for pk, device_id, a in gone if (device_id, a) in removed])


def raise_for_devices(tenant_id: int, device_ids) -> int:
    """Raises what the stored inventory of these devices calls for: for a device that has
    just activated, which the last sync found carrying a flagged profile or a marked app.
    Returns how many events were raised."""
    guarded = protected(tenant_id, device_ids)
    if not guarded:
        return 0
    links = DeviceProfile.objects.filter(
        device_id__in=guarded,
        profile__status__in=list(PROFILE_THREAT),
    ).values_list("device_id", "profile_id", "profile__status", "profile__identifier")
    findings = [
        Finding(d, PROFILE_THREAT[status], PROFILE, p, _profile_details(p, identifier))
        for d, p, status, identifier in links
    ]
    marks = set(
        MaliciousApp.objects.filter(tenant_id=tenant_id).values_list("platform", "identifier")
    )
    if marks:
        installs = DeviceApp.objects.filter(
            device_id__in=guarded, app__identifier__in={i for _, i in marks}
        ).values_list("device_id", "app_id", "app__platform", "app__identifier")
        findings += [
            Finding(d, MALICIOUS_APP, APP, a, _app_details(a, platform, identifier))
            for d, a, platform, identifier in installs
            if (platform, identifier) in marks
        ]
    with transaction.atomic():
        return len(raise_findings(tenant_id, findings))


def _profile_details(profile_id: int, identifier: str) -> dict:
    return {"source": "inventory", "profile_id": profile_id, "profile": identifier}


def _app_details(app_id: int, platform: str, identifier: str) -> dict:
    return {"source": "inventory", "app_id": app_id, "platform": platform, "app": identifier}


# Administrators' decisions. Each is audited and changes the status only by their hand.


def trust_profile(tenant: Tenant, profile_id, actor: str, source_ip: str | None = None):
    """Trusts the profile and closes its open profile threats (with their undo actions)."""
    with transaction.atomic():
        profile = _locked_profile(tenant, profile_id)
        previous = profile.status
        profile.status = Profile.TRUSTED
        profile.save(update_fields=["status"])

        gone = active_events(tenant.pk, PROFILE, [profile.pk])
        mitigate_events(tenant.pk, [pk for pk, _, _ in gone])
        detail = {"from": previous, "mitigated": len(gone)}
        _audit(tenant, actor, "profile.trust", "profile", profile.pk, source_ip, detail)
    log.info("profile trusted profile=%s mitigated=%s", profile.pk, len(gone))
    return profile


def distrust_profile(tenant: Tenant, profile_id, actor: str, source_ip: str | None = None):
    """Makes the profile untrusted: every device that carries it raises an untrusted-profile
    threat, which takes over from its suspicious-profile one."""
    with transaction.atomic():
        profile = _locked_profile(tenant, profile_id)
        previous = profile.status
        profile.status = Profile.UNTRUSTED
        profile.save(update_fields=["status"])

        # Raised before the suspicious threats end, so a label both rows apply stays on.
        carriers = DeviceProfile.objects.filter(
            profile=profile, device__state=Device.ACTIVE
        ).values_list("device_id", flat=True)
        details = _profile_details(profile.pk, profile.identifier)
        raised = raise_findings(
            tenant.pk,
            [Finding(d, UNTRUSTED_PROFILE, PROFILE, profile.pk, details) for d in carriers],
        )
        gone = active_events(tenant.pk, PROFILE, [profile.pk], threats=[SUSPICIOUS_PROFILE])
        mitigate_events(tenant.pk, [pk for pk, _, _ in gone])
        detail = {"from": previous, "raised": len(raised)}
        _audit(tenant, actor, "profile.distrust", "profile", profile.pk, source_ip, detail)
    log.info("profile distrusted profile=%s raised=%s", profile.pk, len(raised))
    return profile


def _locked_profile(tenant: Tenant, profile_id) -> Profile:
    pk = clean_id(profile_id, "profile_id")
    profile = Profile.objects.select_for_update().filter(tenant=tenant, pk=pk).first()
    if profile is None:
        raise UnknownObject("profile_id", f"no profile {pk} in this tenant")
    return profile


def mark_app_malicious(
    tenant: Tenant,
    platform,
    identifier,
    actor: str,
    source_ip: str | None = None,
    reason="",
) -> tuple[MaliciousApp, int]:
    """Marks the app malicious; every device that carries it raises a malicious-app threat.
    Marking it again raises on devices that have no open threat for it. Returns the mark
    and how many events were raised."""
    platform, identifier = clean_app_key(platform, identifier)
    reason = _clean_text(reason, "reason", REASON_MAX, required=False)

    with transaction.atomic():
        mark, created = MaliciousApp.objects.get_or_create(
            tenant=tenant,
            platform=platform,
            identifier=identifier,
            defaults={"reason": reason, "marked_by": actor[:150]},
        )
        findings = []
        app = App.objects.filter(tenant=tenant, platform=platform, identifier=identifier).first()
        if app is not None:
            carriers = DeviceApp.objects.filter(app=app, device__state=Device.ACTIVE).values_list(
                "device_id", flat=True
            )
            details = _app_details(app.pk, platform, identifier)
            findings = [Finding(d, MALICIOUS_APP, APP, app.pk, details) for d in carriers]
        raised = raise_findings(tenant.pk, findings)
        detail = {"platform": platform, "identifier": identifier, "new": created}
        detail["raised"] = len(raised)
        _audit(tenant, actor, "app.mark_malicious", "malicious_app", mark.pk, source_ip, detail)
    log.info("app marked malicious mark=%s raised=%s", mark.pk, len(raised))
    return mark, len(raised)


def unmark_app(
    tenant: Tenant, platform, identifier, actor: str, source_ip: str | None = None
) -> int:
    """Removes the mark and closes the open malicious-app threats; returns how many."""
    platform, identifier = clean_app_key(platform, identifier)
    with transaction.atomic():
        mark = (
            MaliciousApp.objects.select_for_update()
            .filter(tenant=tenant, platform=platform, identifier=identifier)
            .first()
        )
        if mark is None:
            raise UnknownObject("identifier", "this app is not marked malicious")
        app = App.objects.filter(tenant=tenant, platform=platform, identifier=identifier).first()
        gone = active_events(tenant.pk, APP, [app.pk]) if app is not None else []
        mitigate_events(tenant.pk, [pk for pk, _, _ in gone])
        detail = {"platform": platform, "identifier": identifier, "mitigated": len(gone)}
        _audit(tenant, actor, "app.unmark_malicious", "malicious_app", mark.pk, source_ip, detail)
        mark.delete()
    log.info("app unmarked tenant=%s mitigated=%s", tenant.pk, len(gone))
    return len(gone)


def clean_app_key(platform, identifier) -> tuple[str, str]:
    """Validates an app's platform and identifier from a form, the API or the command line."""
    if platform not in dict(Device.PLATFORMS):
        raise InvalidInput("platform", "must be ios or android")
    return platform, _clean_text(identifier, "identifier", IDENTIFIER_MAX, required=True)


def _clean_text(value, name: str, limit: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(name, "must be text")
    value = value.strip()
    if required and not value:
        raise InvalidInput(name, "is required")
    if len(value) > limit:
        raise InvalidInput(name, f"must be at most {limit} characters")
    if CONTROL.search(value):
        raise InvalidInput(name, "must not hold control characters")
    return value


def clean_id(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InvalidInput(name, "must be a number")
    number = int(value)
    if not 0 < number < 2**63:
        raise InvalidInput(name, "is out of range")
    return number


def _audit(tenant, actor, action, object_type, object_id, source_ip, detail) -> None:
    AuditEntry.objects.create(
        tenant=tenant,
        actor=actor[:150],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
        source_ip=source_ip or None,
    )
