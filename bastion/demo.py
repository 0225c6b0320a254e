"""`bastion demo`: an emulated Core and Cloud, a tenant, both integrations, synced."""

import os
import secrets
import sys

import click

DEMO_TENANT = "Demo Environment"
DEMO_ADMIN = "admin"
CORE_LABELS = ["Executives", "Sales", "Engineering"]
CLOUD_GROUPS = ["Executives", "Sales Team", "iOS Devices"]


def run_demo(once: bool, devices: int, bind: str) -> None:
    # The emulator speaks plain http on loopback; real MDMs stay https-only.
    os.environ["BASTION_ALLOW_HTTP_MDM"] = "true"
    if once:
        bind = f"127.0.0.1:{free_port()}"
    base_url = f"http://{bind}"
    # Links, files and emails point at the web server this demo starts.
    os.environ.setdefault("BASTION_PUBLIC_URL", base_url)
    from bastion.cli import migrate, run_sync, start_processes, wait_for

    migrate()
    from emulators.mobileiron.fleet import generate_fleet
    from emulators.mobileiron.server import start_emulator

    click.echo(f"Starting the MobileIron emulator with {devices} devices per product…")
    emulator = start_emulator(generate_fleet(devices=devices, seed=2026))
    try:
        tenant, password = demo_tenant()
        core = demo_integration(tenant, "core", "Core Demo", emulator.base_url("core"), CORE_LABELS)
        cloud = demo_integration(
            tenant, "cloud", "Cloud Demo", emulator.base_url("cloud"), CLOUD_GROUPS
        )

        runs = [run_sync(core), run_sync(cloud)]
        click.echo()
        click.echo(summary(tenant))
        failed = [run for run in runs if run.status != "done"]
        for run in failed:
            click.echo(f"{run.integration.name}: {run.get_status_display()} {run.error}", err=True)

        if failed:
            sys.exit(1)

        processes = start_processes(bind, scheduler=not once, access_log=False)
        try:
            wait_for_web(base_url, processes)
            from bastion.demo_scenes import play

            play(tenant, core, cloud, emulator, base_url)
            click.echo(next_steps(password, bind, once))
            if not once:
                wait_for(processes)
        finally:
            stop(processes)
    finally:
        emulator.stop()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_web(base_url: str, processes, timeout: float = 60.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise click.ClickException("a Bastion process stopped while starting")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise click.ClickException(f"the web server did not answer at {base_url}")


def stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except Exception:
            process.kill()


def demo_tenant():
    from django.contrib.auth import get_user_model

    from bastion.tenancy.models import Tenant
    from bastion.tenancy.services import create_administrator, create_tenant

    tenant = Tenant.objects.filter(name=DEMO_TENANT).first() or create_tenant(DEMO_TENANT)
    if get_user_model().objects.filter(username=DEMO_ADMIN).exists():
        return tenant, None

    password = secrets.token_urlsafe(12)
    create_administrator(tenant, DEMO_ADMIN, password, "admin")
    return tenant, password


def demo_integration(tenant, kind: str, name: str, url: str, group_names: list[str]):
    """Creates the integration, or points an existing one at this run's emulator."""
    from bastion.mdm.models import Integration
    from bastion.mdm.services import (
        IntegrationSettings,
        build_connector,
        create_integration,
        resolve_groups,
        resolve_space,
    )

    username = "admin" if kind == "core" else "admin@acme.example"
    existing = Integration.objects.filter(tenant=tenant, name=name).first()
    if existing is not None:
        existing.url = url
        existing.password = "secret"
        existing.status = Integration.IDLE
        existing.save()
        return existing

    connector = build_connector(kind, url, username, "secret")
    try:
        space_id, space_name = resolve_space(connector, "")
        groups = resolve_groups(connector.list_groups(space_id), group_names)
    finally:
        connector.close()
    values = IntegrationSettings(
        kind=kind,
        name=name,
        url=url,
        username=username,
        password="secret",
        space_id=space_id,
        space_name=space_name,
        mask_users=kind == "cloud",
    )
    return create_integration(tenant, values, groups)


def summary(tenant) -> str:
    from django.db.models import Count, Q

    from bastion.inventory.models import ConsoleGroup, Device

    rows = (
        ConsoleGroup.objects.filter(tenant=tenant)
        .annotate(
            devices_count=Count("devices", filter=~Q(devices__state=Device.REMOVED), distinct=True),
            users_count=Count("users", distinct=True),
        )
        .select_related("integration")
        .order_by("integration__name", "priority", "name")
    )
    width = max([len(row.name) for row in rows] + [20])
    lines = [f"{'Console group':<{width}}  {'Devices':>7}  {'Users':>6}", "-" * (width + 17)]
    totals = [0, 0]
    for row in rows:
        if row.integration is None and not row.devices_count:
            continue
        lines.append(f"{row.name:<{width}}  {row.devices_count:>7}  {row.users_count:>6}")
        totals[0] += row.devices_count
        totals[1] += row.users_count
    lines.append("-" * (width + 17))
    lines.append(f"{'Total':<{width}}  {totals[0]:>7}  {totals[1]:>6}")
    return "\n".join(lines)


def next_steps(password: str | None, bind: str, once: bool) -> str:
    login = f"admin / {password}" if password else "admin (password set on the first demo run)"
    lines = ["", f"Tenant {DEMO_TENANT!r}, console account {login}."]
    if once:
        lines += [
            "The emulator stopped with the demo. Run ./scripts/demo without --once to keep it,",
            "the web console, a worker and the scheduler running and try things by hand.",
        ]
        return "\n".join(lines)

    lines += [
        f"The web console, a worker and the scheduler run at http://{bind}/",
        "(Ctrl-C stops everything). Meanwhile, in another terminal:",
        '  export PATH="$PWD/.venv/bin:$PATH" BASTION_ALLOW_HTTP_MDM=true',
        "  bastion sync 'Core Demo'            sync again: nothing changed, nothing written",
        "  bastion sync 'Cloud Demo' --queue   the same through the worker",
        "  bastion history 'Cloud Demo'        the runs with their counts",
        "  bastion mdm groups 'Core Demo'      labels, and which can answer threats",
    ]
    return "\n".join(lines)
