"""Two tenants with one of everything, each object carrying its tenant's marker in its
names, so a leak of tenant B's data into tenant A's answers shows as B's marker."""

from dataclasses import dataclass, field

from django.utils import timezone

from bastion.activation import tokens
from bastion.activation.models import ActivationToken, ReactivationRequest
from bastion.api.models import AdminToken, DeviceCredential
from bastion.inventory.models import (
    App,
    ConsoleGroup,
    Device,
    DeviceApp,
    DeviceProfile,
    DeviceUser,
    Profile,
)
from bastion.mdm.models import Integration, SyncRun
from bastion.tenancy.models import AuditEntry, Membership
from bastion.tenancy.services import create_administrator
from bastion.threats.inventory_models import MaliciousApp
from bastion.threats.matrix import matrix_for
from bastion.threats.models import ResponseAction, ThreatEvent

PASSWORD = "correct horse battery 9"
MDM_PASSWORD = {"acme": "acme-mdm-Pa55word", "globex": "globex-mdm-Pa55word"}


@dataclass
class Side:
    """One tenant's objects, and the secrets to act as its administrator or its device."""

    marker: str
    tenant: object
    admin: object = None
    admin_token: str = ""
    integration: object = None
    group: object = None
    user: object = None
    device: object = None
    device_token: str = ""
    app: object = None
    profile: object = None
    event: object = None
    action: object = None
    request: object = None
    code: object = None
    link: object = None
    run: object = None
    mark: object = None
    names: list[str] = field(default_factory=list)


def build_side(tenant, marker: str) -> Side:
    side = Side(marker=marker, tenant=tenant)

    side.admin = create_administrator(tenant, f"{marker}-admin", PASSWORD, Membership.ADMIN)
    _, side.admin_token = AdminToken.issue(side.admin, tenant)

    integration = Integration(
        tenant=tenant,
        kind=Integration.CORE,
        name=f"{marker}-mdm",
        url=f"https://mdm.{marker}.example",
        username=f"{marker}-svc",
        space_id="1",
        space_name="Global",
    )
    integration.password = MDM_PASSWORD[marker]
    integration.save()
    side.integration = integration

    side.group = ConsoleGroup.objects.create(
        tenant=tenant,
        integration=integration,
        mdm_group_id="11",
        mdm_group_name=f"{marker}-label",
        name=f"{marker}-mdm / {marker}-label",
        priority=0,
    )
    side.user = DeviceUser.objects.create(
        tenant=tenant,
        user_key=f"{marker}-user-key",
        email=f"{marker}.user@{marker}.example",
        first_name=f"{marker}-first",
        last_name=f"{marker}-last",
        group=side.group,
    )
    side.device = Device.objects.create(
        tenant=tenant,
        integration=integration,
        group=side.group,
        user=side.user,
        mdm_id=f"0b6d2c4e-1111-4aaa-8bbb-{'a' if marker == 'acme' else 'b'}00000000001",
        platform=Device.IOS,
        model="iPhone15,2",
        name=f"{marker}-phone",
        state=Device.ACTIVE,
        agent_kind=Device.AGENT_STANDALONE,
    )
    _, side.device_token = DeviceCredential.issue(side.device)

    side.app = App.objects.create(
        tenant=tenant, platform=Device.IOS, identifier=f"com.{marker}.app", name=f"{marker}-app"
    )
    DeviceApp.objects.create(device=side.device, app=side.app, version="1.0")
    side.profile = Profile.objects.create(
        tenant=tenant, identifier=f"com.{marker}.profile", name=f"{marker}-profile"
    )
    DeviceProfile.objects.create(device=side.device, profile=side.profile)

    matrix = matrix_for(side.group)
    side.event = ThreatEvent.objects.create(
        tenant=tenant,
        device=side.device,
        group=side.group,
        matrix_version=matrix.current,
        agent_event_id=f"{marker}-event-1",
        threat_id="arp_mitm",
        severity="high",
        detected_at=timezone.now(),
        details={"ssid": f"{marker}-wifi"},
    )
    side.action = ResponseAction.objects.create(
        tenant=tenant,
        event=side.event,
        device=side.device,
        integration=integration,
        op=ResponseAction.APPLY,
        kind="label",
        name=f"{marker}-quarantine",
        state=ResponseAction.FAILED,
        last_error="the MDM answered 500",
    )
    side.request = ReactivationRequest.objects.create(
        tenant=tenant,
        device=side.device,
        method="link",
        agent_kind=Device.AGENT_STANDALONE,
        pickup_hash="0" * 64,
    )
    side.code = tokens.current(integration, ActivationToken.CODE)
    side.link = tokens.current(integration, ActivationToken.LINK)
    side.run = SyncRun.objects.create(
        integration=integration,
        trigger=SyncRun.MANUAL,
        status=SyncRun.DONE,
        messages=[f"{marker}-run-message"],
    )
    side.mark = MaliciousApp.objects.create(
        tenant=tenant,
        platform=Device.ANDROID,
        identifier=f"com.{marker}.malware",
        reason=f"{marker}-reason",
        marked_by=side.admin.username,
    )
    AuditEntry.objects.create(
        tenant=tenant, actor=side.admin.username, action=f"{marker}.audited", object_id="1"
    )

    side.names = [
        side.integration.name,
        side.group.mdm_group_name,
        side.user.email,
        side.user.first_name,
        side.device.name,
        side.app.name,
        side.profile.name,
        side.action.name,
        f"{marker}-wifi",
        f"{marker}-event-1",
        f"{marker}-run-message",
        f"{marker}.audited",
        side.mark.identifier,
        side.mark.reason,
        side.admin.username,
        side.code.token,
        side.link.token,
    ]
    return side


def snapshot(side: Side) -> dict:
    """What an attack from the other tenant must leave exactly as it was."""
    return {
        "integration": Integration.objects.filter(pk=side.integration.pk)
        .values("name", "url", "username", "password_encrypted", "status")
        .first(),
        "group": ConsoleGroup.objects.filter(pk=side.group.pk).values("name", "priority").first(),
        "device": Device.objects.filter(pk=side.device.pk)
        .values("state", "group_id", "name")
        .first(),
        "event": ThreatEvent.objects.filter(pk=side.event.pk)
        .values("state", "mitigated_at")
        .first(),
        "action": ResponseAction.objects.filter(pk=side.action.pk)
        .values("state", "attempts")
        .first(),
        "request": ReactivationRequest.objects.filter(pk=side.request.pk)
        .values("status", "decided_by")
        .first(),
        "tokens": sorted(
            ActivationToken.objects.filter(integration=side.integration).values_list(
                "key_id", "ended_at"
            )
        ),
        "matrix": list(
            matrix_for(side.group).versions.order_by("number").values_list("number", flat=True)
        ),
        "draft": matrix_for(side.group).draft,
        "credentials": list(
            DeviceCredential.objects.filter(device=side.device).values_list("prefix", "revoked_at")
        ),
        "profile": Profile.objects.filter(pk=side.profile.pk).values("status").first(),
        "app": App.objects.filter(pk=side.app.pk).values("name").first(),
        "marks": list(
            MaliciousApp.objects.filter(tenant=side.tenant).values_list("pk", "identifier")
        ),
    }
