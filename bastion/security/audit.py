"""Audit entries written by the command line, where no request says who or from where."""

import getpass

from bastion.tenancy.models import AuditEntry


def cli_actor() -> str:
    """The operating-system account that ran the command: the person at the terminal."""
    try:
        return f"cli:{getpass.getuser()}"[:150]
    except (KeyError, OSError):
        # A container user with no passwd entry still ran it from the command line.
        return "cli"


def record_cli(tenant, action: str, object_type: str = "", object_id="", **detail) -> AuditEntry:
    return AuditEntry.objects.create(
        tenant=tenant,
        actor=cli_actor(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
    )
