"""Inventory threats raised and mitigated in bulk, through each device's matrix.

The same event, MDM actions and notice as an agent's report (`services.report_threats`),
written a few queries per call rather than per device: one profile or app can sit on
thousands of devices, and the sync calls this from its write transaction. Each event has a
stable id derived from the profile or app, the threat, and how many times it was raised on
the device, so the same decision taken twice raises nothing new. Agents can't send such an
id: it holds "/", which the device API refuses.
"""

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from bastion.inventory.models import Device
from bastion.threats.catalog import catalog
from bastion.threats.matrix import HANDLED_ON_DEVICE, complete_rows, matrix_for
from bastion.threats.models import ResponseAction, ThreatEvent
from bastion.threats.services import add_actions, add_notices, enqueue, undo_action

log = logging.getLogger(__name__)

EVENT_PREFIX = "inventory/"
EVENT_ID = re.compile(r"^inventory/([pa])(\d+)/([a-z_]+)(?:/(\d+))?$")
PROFILE, APP = "p", "a"


@dataclass(frozen=True)
class Finding:
    device_id: int
    threat_id: str
    kind: str  # PROFILE or APP
    object_id: int
    details: dict = field(default_factory=dict, compare=False, hash=False)


def event_id(kind: str, object_id: int, threat_id: str, occurrence: int = 1) -> str:
    base = f"{EVENT_PREFIX}{kind}{object_id}/{threat_id}"
    return base if occurrence == 1 else f"{base}/{occurrence}"


def parse_event_id(value: str) -> tuple[str, int, str] | None:
    match = EVENT_ID.match(value)
    if match is None:
        return None
    return match[1], int(match[2]), match[3]


def raise_findings(tenant_id: int, findings: list[Finding]) -> list[ThreatEvent]:
    """Stores one event per finding on a device whose agent is active, unless one is open
    already, with what the device's matrix row asks for. Must run inside a transaction.
    Returns the events created."""
    if not findings:
        return []
    now = timezone.now()

    # Read without locks first: on a re-sync nearly everything is already raised.
    raised = _raised(tenant_id, {f.device_id for f in findings})
    needed = [f for f in findings if not _open(raised, f)]
    if not needed:
        return []

    # The device rows are the per-device lock the agent path takes too; what was raised
    # is read again under it, so two writers can't both raise the same event.
    ids = sorted({f.device_id for f in needed})
    devices = {
        device.pk: device
        for device in Device.objects.select_for_update(of=("self",))
        .select_related("group__integration")
        .filter(tenant_id=tenant_id, pk__in=ids, state=Device.ACTIVE)
        .order_by("pk")
    }
    raised = _raised(tenant_id, list(devices))

    rows_of: dict[int, tuple] = {}
    events, seen = [], set()
    for finding in needed:
        device = devices.get(finding.device_id)
        threat = catalog().get(finding.threat_id)
        key = (finding.device_id, finding.kind, finding.object_id, finding.threat_id)
        if device is None or threat is None or device.platform not in threat.platforms:
            continue
        before = raised[key]
        if key in seen or _open(raised, finding):
            continue
        seen.add(key)

        if device.group_id not in rows_of:
            matrix = matrix_for(device.group)
            rows_of[device.group_id] = (matrix.current, complete_rows(matrix.current.rows))
        version, rows = rows_of[device.group_id]
        row = rows[threat.id]
        event = ThreatEvent(
            tenant_id=tenant_id,
            device=device,
            group_id=device.group_id,
            matrix_version=version,
            agent_event_id=event_id(
                finding.kind, finding.object_id, threat.id, occurrence=len(before) + 1
            ),
            threat_id=threat.id,
            severity=row["severity"],
            detected_at=now,
            received_at=now,
            details=finding.details,
            ignored=not row["enabled"],
            handled_on_device=(
                row["enabled"]
                and row["mdm_action"] == HANDLED_ON_DEVICE
                and device.agent_kind == Device.AGENT_MDM
            ),
        )
        events.append((event, row, threat))
    if not events:
        return []

    # Every supported database returns the new ids, which the actions below need.
    ThreatEvent.objects.bulk_create([event for event, _, _ in events], batch_size=500)
    actions = add_actions(events)
    notices = add_notices(events, now)

    stored_events = [event for event, _, _ in events]
    transaction.on_commit(lambda: enqueue(actions, notices))
    log.info("inventory threats raised count=%s tenant=%s", len(stored_events), tenant_id)
    return stored_events


def _raised(tenant_id: int, device_ids) -> dict[tuple, list[str]]:
    """States of the inventory events already raised, by (device, kind, object, threat)."""
    raised: dict[tuple, list[str]] = defaultdict(list)
    existing = ThreatEvent.objects.filter(
        tenant_id=tenant_id, device_id__in=list(device_ids), agent_event_id__startswith=EVENT_PREFIX
    ).values_list("device_id", "agent_event_id", "state")
    for device_id, agent_event_id, state in existing:
        parsed = parse_event_id(agent_event_id)
        if parsed is not None:
            raised[(device_id, *parsed)].append(state)
    return raised


def _open(raised: dict, finding: Finding) -> bool:
    key = (finding.device_id, finding.kind, finding.object_id, finding.threat_id)
    return ThreatEvent.ACTIVE in raised.get(key, ())


def active_events(tenant_id: int, kind: str, object_ids, threats=None, device_ids=None):
    """Ids of the active inventory events about these profiles or apps."""
    wanted = set(object_ids)
    query = ThreatEvent.objects.filter(
        tenant_id=tenant_id, state=ThreatEvent.ACTIVE, agent_event_id__startswith=EVENT_PREFIX
    )
    if device_ids is not None:
        query = query.filter(device_id__in=list(device_ids))
    if threats:
        query = query.filter(threat_id__in=list(threats))
    found = []
    for pk, device_id, agent_event_id in query.values_list("pk", "device_id", "agent_event_id"):
        parsed = parse_event_id(agent_event_id)
        if parsed is not None and parsed[0] == kind and parsed[1] in wanted:
            found.append((pk, device_id, parsed[1]))
    return found


def mitigate_events(tenant_id: int, event_ids: list[int]) -> list[int]:
    """Marks the events mitigated and undoes what their rows say to undo, once per label or
    attribute of a device, unless another active threat still needs it. Must run inside a
    transaction. Returns the ids of the undo actions."""
    if not event_ids:
        return []
    now = timezone.now()
    events = ThreatEvent.objects.filter(
        tenant_id=tenant_id, pk__in=list(event_ids), state=ThreatEvent.ACTIVE
    )
    device_ids = sorted(set(events.values_list("device_id", flat=True)))
    list(Device.objects.select_for_update().filter(pk__in=device_ids).order_by("pk"))
    ids = list(events.values_list("pk", flat=True))
    if not ids:
        return []
    ThreatEvent.objects.filter(pk__in=ids, state=ThreatEvent.ACTIVE).update(
        state=ThreatEvent.MITIGATED, mitigated_at=now
    )

    applies = ResponseAction.objects.filter(
        event_id__in=ids, op=ResponseAction.APPLY, undo_on_mitigation=True, settled=False
    )
    # Not delivered yet: cancelled, never sent. Compare-and-set, as a worker may claim it.
    applies.filter(state=ResponseAction.PENDING).update(
        state=ResponseAction.CANCELLED, last_error="mitigated before delivery"
    )
    made = list(applies.filter(state__in=[ResponseAction.CLAIMED, ResponseAction.DONE]))
    if not made:
        return []

    still_needed = set(
        ResponseAction.objects.filter(
            device_id__in=device_ids,
            op=ResponseAction.APPLY,
            settled=False,
            event__state=ThreatEvent.ACTIVE,
            state__in=[ResponseAction.PENDING, ResponseAction.CLAIMED, ResponseAction.DONE],
        ).values_list("device_id", "kind", "name", "attribute")
    )
    undone = set(
        ResponseAction.objects.filter(undoes__in=made)
        .exclude(state=ResponseAction.CANCELLED)
        .values_list("undoes_id", flat=True)
    )
    undos, keys = [], set()
    for apply in made:
        key = (apply.device_id, *apply.target_key)
        if key in still_needed or key in keys or apply.pk in undone:
            continue
        keys.add(key)
        undos.append(undo_action(apply))
    created = ResponseAction.objects.bulk_create(undos, batch_size=500)
    undo_ids = [action.pk for action in created]
    transaction.on_commit(lambda: enqueue(undo_ids, []))
    return undo_ids
