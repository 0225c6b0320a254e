"""Threat Response Matrices: rows, defaults, the draft, and deploying numbered versions."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from bastion.inventory.models import ConsoleGroup
from bastion.mdm.models import ActionTarget, Integration
from bastion.mdm.services import InvalidInput
from bastion.threats.catalog import NO_DEVICE_ACTION, SEVERITIES, Threat, catalog
from bastion.threats.models import Matrix, MatrixVersion

# The row's MDM action when the MDM's own agent answers (Core's local actions).
HANDLED_ON_DEVICE = "on_device"
REMOVE = "remove"
NONE = "none"
MITIGATIONS = (REMOVE, NONE)
BOOLEAN_FIELDS = ("enabled", "alert_user", "notify_admin")
ROW_FIELDS = (*BOOLEAN_FIELDS, "severity", "device_action", "mdm_action", "mitigation")


def default_row(threat: Threat) -> dict:
    return {
        "enabled": True,
        "severity": threat.severity,
        "alert_user": threat.severity == "critical",
        "device_action": NO_DEVICE_ACTION,
        "mdm_action": None,
        "mitigation": NONE,
        "notify_admin": False,
    }


def complete_rows(rows: dict) -> dict:
    """Every catalog threat's row: stored settings where present, defaults for the rest."""
    out = {}
    for threat in catalog().threats.values():
        row = default_row(threat)
        row.update({k: v for k, v in (rows.get(threat.id) or {}).items() if k in ROW_FIELDS})
        out[threat.id] = row
    return out


def matrix_for(group: ConsoleGroup) -> Matrix:
    """The group's matrix, created from the tenant's default one (the Default Group's)."""
    matrix = Matrix.objects.filter(group=group).select_related("current").first()
    if matrix is not None:
        return matrix

    rows = {}
    if not group.is_default:
        default = matrix_for(ConsoleGroup.default_for(group.tenant))
        rows = _portable(default.current.rows, group)
    try:
        with transaction.atomic():
            matrix = Matrix.objects.create(tenant=group.tenant, group=group)
            _new_version(matrix, rows, "system")
    except IntegrityError:
        # Another request created it first: use theirs.
        matrix = Matrix.objects.select_related("current").get(group=group)
    return matrix


def _portable(rows: dict, group: ConsoleGroup) -> dict:
    """Rows copied to another group keep no MDM action the new group's MDM can't take."""
    out = {}
    for threat_id, row in rows.items():
        row = dict(row)
        action = row.get("mdm_action")
        if action == HANDLED_ON_DEVICE and not _is_core(group):
            row["mdm_action"] = None
        elif isinstance(action, int) and not _targets(group).filter(pk=action).exists():
            row["mdm_action"] = None
        if row.get("mdm_action") is None:
            row["mitigation"] = NONE
        out[threat_id] = row
    return out


def _new_version(matrix: Matrix, rows: dict, actor: str) -> MatrixVersion:
    last = matrix.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = MatrixVersion.objects.create(
        matrix=matrix,
        number=last + 1,
        rows=complete_rows(rows),
        catalog_version=catalog().version,
        deployed_by=actor[:150],
    )
    matrix.current = version
    matrix.draft = {}
    matrix.draft_changed_at = None
    matrix.save(update_fields=["current", "draft", "draft_changed_at"])
    return version


def current_rows(matrix: Matrix) -> dict:
    return complete_rows(matrix.current.rows)


def draft_rows(matrix: Matrix) -> dict:
    return complete_rows(matrix.draft or matrix.current.rows)


def set_row(matrix: Matrix, threat_id: str, changes: dict) -> dict:
    """Changes one row of the draft; raises InvalidInput naming the bad field."""
    threat = catalog().get(threat_id)
    if threat is None:
        raise InvalidInput("threat_id", f"no threat {threat_id!r} in the catalog")
    if not isinstance(changes, dict) or not changes:
        raise InvalidInput("row", "send the fields to change")

    with transaction.atomic():
        locked = (
            Matrix.objects.select_for_update(of=("self",)).select_related("group").get(pk=matrix.pk)
        )
        rows = draft_rows(locked)
        row = dict(rows[threat_id])
        for name, value in changes.items():
            row[name] = clean_field(locked.group, threat, name, value)
        check_row(locked.group, threat, row)

        rows[threat_id] = row
        locked.draft = rows
        locked.draft_changed_at = timezone.now()
        locked.save(update_fields=["draft", "draft_changed_at"])
    matrix.draft, matrix.draft_changed_at = locked.draft, locked.draft_changed_at
    return row


def clean_field(group: ConsoleGroup, threat: Threat, name: str, value):
    if name not in ROW_FIELDS:
        raise InvalidInput(name, f"unknown field; rows have {', '.join(ROW_FIELDS)}")
    if name in BOOLEAN_FIELDS:
        if not isinstance(value, bool):
            raise InvalidInput(name, "must be true or false")
        return value
    if name == "severity":
        if value not in SEVERITIES:
            raise InvalidInput(name, f"must be one of {', '.join(SEVERITIES)}")
        return value
    if name == "device_action":
        allowed = {NO_DEVICE_ACTION}
        for platform in threat.platforms:
            allowed.update(catalog().device_actions.get(platform, {}))
        if value not in allowed:
            raise InvalidInput(name, f"must be one of {', '.join(sorted(allowed))}")
        return value
    if name == "mitigation":
        if value not in MITIGATIONS:
            raise InvalidInput(name, "must be remove or none")
        return value
    return _clean_mdm_action(group, value)


def _clean_mdm_action(group: ConsoleGroup, value):
    if value in (None, "", NONE):
        return None
    if value == HANDLED_ON_DEVICE:
        if not _is_core(group):
            raise InvalidInput(
                "mdm_action", "handling on the device exists only for MobileIron Core groups"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InvalidInput("mdm_action", "choose an action target id, on_device, or none")
    target = _targets(group).filter(pk=int(value)).first()
    if target is None:
        raise InvalidInput("mdm_action", f"no action target {value} for this group's MDM")
    if not target.usable:
        raise InvalidInput("mdm_action", f"{target.name!r} can't be used: {target.blocker}")
    return target.pk


def check_row(group: ConsoleGroup, threat: Threat, row: dict) -> None:
    if row["mitigation"] != REMOVE:
        return
    action = row["mdm_action"]
    if not threat.mitigable:
        raise InvalidInput("mitigation", f"{threat.name} can't be mitigated: choose none")
    if action is None or action == HANDLED_ON_DEVICE:
        raise InvalidInput("mitigation", "remove needs an MDM action to undo")
    target = ActionTarget.objects.filter(pk=action).first()
    if target is not None and target.kind == ActionTarget.LOCK:
        raise InvalidInput("mitigation", "a lock can't be undone: choose none")


def _is_core(group: ConsoleGroup) -> bool:
    return group.integration_id is not None and group.integration.kind == Integration.CORE


def _targets(group: ConsoleGroup):
    return ActionTarget.objects.filter(integration_id=group.integration_id)


def usable_targets(group: ConsoleGroup) -> list[ActionTarget]:
    if group.integration_id is None:
        return []
    return [t for t in _targets(group).order_by("kind", "name") if t.usable]


@transaction.atomic
def deploy(matrix: Matrix, actor: str) -> MatrixVersion:
    """Makes the draft a new numbered version; agents get it the next time they ask."""
    locked = Matrix.objects.select_for_update().get(pk=matrix.pk)
    version = _new_version(locked, locked.draft or locked.current.rows, actor)
    matrix.current, matrix.draft, matrix.draft_changed_at = version, {}, None
    return version


def etag(version: MatrixVersion) -> str:
    # The catalog version is part of the tag: a newer catalog changes what agents see.
    return f'"m{version.matrix_id}-v{version.number}-c{catalog().version}"'
