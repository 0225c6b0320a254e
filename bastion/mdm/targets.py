"""The MDM action targets a Threat Response Matrix can choose from, learnt at each sync."""

from django.db import transaction
from django.utils import timezone

from bastion.mdm.connectors.base import MdmGroup
from bastion.mdm.models import ActionTarget, Integration

LOCK_ID = "lock"
SELECTED_FOR_SYNC = "selected for sync: applying it would move devices between groups"


def learn_targets(integration: Integration, listed: list[MdmGroup], selected: set[str]) -> None:
    """Records every listed label or group with whether it can be a target, and why not.

    Targets the MDM no longer lists stay, marked absent, so a matrix row that names one
    shows why its action fails instead of silently losing its choice.
    """
    kind = ActionTarget.LABEL if integration.kind == Integration.CORE else ActionTarget.ATTRIBUTE
    now = timezone.now()
    existing = {
        target.mdm_group_id: target
        for target in ActionTarget.objects.filter(integration=integration, kind=kind)
    }

    create, update = [], []
    for group in listed:
        blocker = group.target_blocker
        if not blocker and group.id in selected:
            blocker = SELECTED_FOR_SYNC
        if kind == ActionTarget.ATTRIBUTE and not blocker and not group.attribute:
            blocker = "rule is not a custom attribute equal to 1"
        values = {
            "name": group.name[:255],
            "attribute": group.attribute[:255],
            "blocker": blocker[:255],
            "present": True,
            "seen_at": now,
        }
        target = existing.pop(group.id, None)
        if target is None:
            create.append(
                ActionTarget(integration=integration, kind=kind, mdm_group_id=group.id, **values)
            )
            continue
        for name, value in values.items():
            setattr(target, name, value)
        update.append(target)

    with transaction.atomic():
        ActionTarget.objects.bulk_create(create)
        ActionTarget.objects.bulk_update(
            update, ["name", "attribute", "blocker", "present", "seen_at"]
        )
        ActionTarget.objects.filter(pk__in=[t.pk for t in existing.values()]).update(
            present=False, blocker="no longer in the MDM"
        )
        if integration.kind == Integration.CLOUD:
            ActionTarget.objects.update_or_create(
                integration=integration,
                kind=ActionTarget.LOCK,
                mdm_group_id=LOCK_ID,
                defaults={"name": "Lock", "present": True, "blocker": "", "seen_at": now},
            )
