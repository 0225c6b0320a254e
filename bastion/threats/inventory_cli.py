"""`bastion profiles ...` and `bastion apps ...`: iOS profiles and malicious-app marks."""

import re

import click

# Names come from the MDM: a terminal must not run the escape sequences they may hold.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def register(main) -> None:
    main.add_command(profiles)
    main.add_command(apps)


def _shown(value: str) -> str:
    return UNPRINTABLE.sub("?", value)


def _run(call):
    from bastion.mdm.services import InvalidInput

    try:
        return call()
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None


def _ready() -> None:
    # Every subcommand reads the database: Django must be set up before their imports.
    from bastion.cli import migrate

    migrate()


@click.group()
def profiles():
    """iOS configuration profiles: list, trust, distrust."""
    _ready()


@profiles.command(name="list")
@click.option("--tenant", "tenant_name")
@click.option("--status", type=click.Choice(["trusted", "untrusted", "suspicious"]))
@click.option("--type", "type_", type=click.Choice(["managed", "unmanaged"]))
@click.option(
    "--sort",
    default="name",
    show_default=True,
    help="name, detected_on or device_count; a leading - reverses it.",
)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def profiles_list(tenant_name, status, type_, sort, limit, as_json):
    """List the tenant's iOS profiles."""
    from bastion.cli import emit, find_tenant, migrate
    from bastion.threats.inventory_queries import ProfileFilter, list_profiles, profile_summary

    migrate()
    tenant = find_tenant(tenant_name)
    found = _run(lambda: list_profiles(tenant, ProfileFilter(status, type_, sort, limit))[:limit])
    rows = [profile_summary(profile) for profile in found]
    lines = [
        f"{r['id']}\t{r['status']}\t{r['type']}\t{r['device_count']} devices"
        f"\t{r['detected_on']:%Y-%m-%d %H:%M %Z}\t{_shown(r['identifier'])}\t{_shown(r['name'])}"
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) or "no profile")


def _decide(decision: str, profile_id: int, tenant_name, as_json) -> None:
    from bastion.cli import emit, find_tenant, migrate
    from bastion.threats import inventory

    migrate()
    tenant = find_tenant(tenant_name)
    call = inventory.trust_profile if decision == "trust" else inventory.distrust_profile
    profile = _run(lambda: call(tenant, profile_id, "cli"))
    data = {"id": profile.pk, "status": profile.status}
    emit(data, as_json, f"Profile {profile.pk} is now {profile.status}")


@profiles.command(name="trust")
@click.argument("profile_id", type=int)
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def profiles_trust(profile_id, tenant_name, as_json):
    """Trust a profile: its open profile threats are mitigated."""
    _decide("trust", profile_id, tenant_name, as_json)


@profiles.command(name="distrust")
@click.argument("profile_id", type=int)
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def profiles_distrust(profile_id, tenant_name, as_json):
    """Distrust a profile: every device that carries it raises an untrusted-profile threat."""
    _decide("distrust", profile_id, tenant_name, as_json)


@click.group()
def apps():
    """Apps marked malicious: malicious (the list), mark, unmark."""
    _ready()


@apps.command(name="malicious")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def apps_malicious(tenant_name, as_json):
    """List the apps marked malicious."""
    from bastion.cli import emit, find_tenant, migrate
    from bastion.threats.inventory_queries import list_marks, mark_summary

    migrate()
    rows = [mark_summary(mark) for mark in list_marks(find_tenant(tenant_name))]
    lines = [
        f"{r['id']}\t{r['platform']}\t{_shown(r['identifier'])}\t{r['device_count']} devices"
        f"\tby {_shown(r['marked_by'])}"
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) or "no app is marked malicious")


@apps.command(name="mark")
@click.argument("platform", type=click.Choice(["ios", "android"]))
@click.argument("identifier")
@click.option("--reason", default="")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def apps_mark(platform, identifier, reason, tenant_name, as_json):
    """Mark the app IDENTIFIER malicious: every device that has it raises a threat."""
    from bastion.cli import emit, find_tenant, migrate
    from bastion.threats import inventory

    migrate()
    tenant = find_tenant(tenant_name)
    mark, raised = _run(
        lambda: inventory.mark_app_malicious(tenant, platform, identifier, "cli", reason=reason)
    )
    data = {"id": mark.pk, "platform": platform, "identifier": mark.identifier, "raised": raised}
    emit(data, as_json, f"Marked {_shown(mark.identifier)} malicious; {raised} threats raised")


@apps.command(name="unmark")
@click.argument("platform", type=click.Choice(["ios", "android"]))
@click.argument("identifier")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def apps_unmark(platform, identifier, tenant_name, as_json):
    """Remove the malicious mark: the app's open threats are mitigated."""
    from bastion.cli import emit, find_tenant, migrate
    from bastion.threats import inventory

    migrate()
    tenant = find_tenant(tenant_name)
    mitigated = _run(lambda: inventory.unmark_app(tenant, platform, identifier, "cli"))
    data = {"platform": platform, "identifier": identifier, "mitigated": mitigated}
    emit(data, as_json, f"Unmarked; {mitigated} threats mitigated")
