"""The `bastion` command: run the processes, manage tenants and MDMs, sync, demo."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import click

_django_ready = False


def setup_django() -> None:
    global _django_ready
    if _django_ready:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    import django

    from bastion.config import ConfigError

    try:
        django.setup()
    except ConfigError as error:
        raise click.ClickException(f"configuration: {error}") from None
    _django_ready = True


def migrate(quiet: bool = True, explicit: bool = False) -> None:
    """Brings the database up to date: always in embedded mode, on request otherwise.

    A distributed deployment upgrades its schema as one deliberate step (`bastion
    migrate`), not from whichever process happens to start first.
    """
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    embedded = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    if embedded or explicit:
        call_command("migrate", interactive=False, verbosity=0 if quiet else 1)


def record_cli(tenant, action: str, object_type: str = "", object_id="", **detail) -> None:
    from bastion.security.audit import record_cli as record

    record(tenant, action, object_type, object_id, **detail)


def emit(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text if text is not None else data)


def find_tenant(name: str | None):
    from bastion.tenancy.models import Tenant

    if name:
        tenant = (
            Tenant.objects.filter(name=name).first()
            or Tenant.objects.filter(tenant_id=name).first()
        )
        if tenant is None:
            raise click.ClickException(f"no tenant named {name!r}")
        return tenant

    tenants = list(Tenant.objects.order_by("name")[:20])
    if len(tenants) == 1:
        return tenants[0]
    if not tenants:
        raise click.ClickException("no tenant yet: create one with `bastion tenant create NAME`")
    names = ", ".join(repr(t.name) for t in tenants)
    raise click.ClickException(f"several tenants exist ({names}): name one with --tenant")


def find_integration(name: str, tenant_name: str | None):
    from bastion.mdm.models import Integration

    tenant = find_tenant(tenant_name)
    integration = Integration.objects.filter(tenant=tenant, name=name).first()
    if integration is None:
        known = ", ".join(repr(i.name) for i in tenant.integrations.order_by("name")[:20])
        raise click.ClickException(
            f"no MDM named {name!r} in tenant {tenant.name!r}"
            + (f"; it has {known}" if known else "; add one with `bastion mdm add`")
        )
    return integration


def secret_input(env_var: str | None, label: str, required: bool = True) -> str:
    """Reads a secret from a named environment variable, or asks for it on a terminal."""
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise click.ClickException(f"environment variable {env_var} is not set")
        return value
    if sys.stdin.isatty():
        return click.prompt(label, hide_input=True, default="" if not required else None)
    if required:
        raise click.ClickException(f"{label}: pass --{label.lower().replace(' ', '-')}-env VAR")
    return ""


class BastionGroup(click.Group):
    """Turns the errors a person can act on into one clear line instead of a traceback."""

    def invoke(self, ctx):
        from bastion.mdm.connectors.base import MdmError

        try:
            return super().invoke(ctx)
        except MdmError as error:
            raise click.ClickException(f"the MDM call failed: {error}") from None
        except ValueError as error:
            if type(error).__name__ == "InvalidInput":
                raise click.ClickException(str(error)) from None
            raise


@click.group(cls=BastionGroup)
@click.version_option(package_name="bastion-mtd")
def main():
    """Bastion, a Mobile Threat Defense console for MobileIron Core and Cloud."""


# Processes.


@main.command(name="migrate")
def migrate_command():
    """Create or upgrade the database tables."""
    migrate(quiet=False, explicit=True)


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, help="Web processes.")
def web(bind, workers):
    """Serve the web console and the APIs with gunicorn."""
    setup_django()
    os.execvp(sys.executable, _web_argv(bind, workers))


@main.command()
@click.option("--concurrency", default=2, show_default=True)
def worker(concurrency):
    """Run a Celery worker: syncs, MDM actions, emails."""
    setup_django()
    os.execvp(sys.executable, _worker_argv(concurrency))


@main.command()
def scheduler():
    """Run the one scheduler that enqueues due syncs and sweeps lost work."""
    setup_django()
    os.execvp(sys.executable, _scheduler_argv())


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
def run(bind):
    """Start the web server, a worker and the scheduler together (embedded mode)."""
    check_bind(bind)
    migrate()
    processes = start_processes(bind)
    click.echo(f"Bastion is running at http://{bind}/ (Ctrl-C stops it)")
    stopped = wait_for(processes)
    if stopped is not None:
        raise click.ClickException(f"{stopped} stopped on its own, so the others were stopped")


def check_bind(bind: str) -> None:
    """Fails before anything starts when the address can't be served from."""
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{bind!r} is not host:port", param_hint="--bind")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "127.0.0.1", int(port)))
        except OSError as error:
            raise click.ClickException(
                f"can't serve on {bind}: {error.strerror or error}; choose another with --bind"
            ) from None


def _web_argv(bind: str, workers: int, access_log: bool = True) -> list[str]:
    argv = [
        sys.executable, "-m", "gunicorn", "bastion.wsgi:application",
        "--bind", bind, "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    return argv + (["--access-logfile", "-"] if access_log else [])


def _worker_argv(concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "bastion", "--quiet", "worker",
        "--concurrency", str(concurrency), "--loglevel", "WARNING",
    ]  # fmt: skip


def _scheduler_argv() -> list[str]:
    from django.conf import settings

    return [
        sys.executable, "-m", "celery", "-A", "bastion", "--quiet", "beat", "--loglevel", "WARNING",
        "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
    ]  # fmt: skip


def start_processes(
    bind: str, scheduler: bool = True, access_log: bool = True
) -> list[subprocess.Popen]:
    setup_django()
    processes = [
        subprocess.Popen(_web_argv(bind, 2, access_log)),
        subprocess.Popen(_worker_argv(2)),
    ]
    if scheduler:
        processes.append(subprocess.Popen(_scheduler_argv()))
    return processes


PROCESS_NAMES = ["the web server", "the worker", "the scheduler"]


def wait_for(processes: list[subprocess.Popen]) -> str | None:
    """Waits until Ctrl-C, SIGTERM or one process exits, then stops them all.

    Returns the name and exit status of a process that exited on its own, else None."""
    asked = []

    def stop(*_):
        asked.append(True)
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    stopped = None
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        if not asked:
            index = next(i for i, process in enumerate(processes) if process.poll() is not None)
            stopped = f"{PROCESS_NAMES[index]} (exit status {processes[index].returncode})"
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    return stopped


@main.command(name="rotate-secrets")
def rotate_secrets():
    """Re-encrypt stored secrets with the first key of BASTION_ENCRYPTION_KEYS."""
    migrate()
    from bastion.security.secrets import RotationError, rotate_all

    try:
        count = rotate_all()
    except RotationError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Re-encrypted {count} secret(s) with the newest key")


# Tenants and administrators.


@main.group()
def tenant():
    """Customer environments."""


@tenant.command(name="create")
@click.argument("name")
@click.option("--anonymous", is_flag=True, help="Store no email or name for device users.")
@click.option("--json", "as_json", is_flag=True)
def tenant_create(name, anonymous, as_json):
    """Create a tenant named NAME (the environment name)."""
    migrate()
    from bastion.tenancy.services import create_tenant

    try:
        created = create_tenant(name, anonymous_users=anonymous)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    record_cli(created, "tenant.create", "tenant", created.pk, anonymous=anonymous)
    data = {"name": created.name, "tenant_id": created.tenant_id, "anonymous": anonymous}
    emit(data, as_json, f"Created tenant {created.name} (tenant id {created.tenant_id})")


@tenant.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def tenant_list(as_json):
    """List the tenants with their tenant ids."""
    migrate()
    from bastion.tenancy.models import Tenant

    rows = [
        {"name": t.name, "tenant_id": t.tenant_id, "anonymous": t.anonymous_users}
        for t in Tenant.objects.order_by("name")
    ]
    emit(rows, as_json, "\n".join(f"{r['name']}\t{r['tenant_id']}" for r in rows) or "no tenant")


@main.group()
def admin():
    """Console administrators."""


@admin.command(name="create")
@click.argument("username")
@click.option("--tenant", "tenant_name")
@click.option("--role", type=click.Choice(["admin", "read_only"]), default="admin")
@click.option("--password-env", help="Read the password from this environment variable.")
def admin_create(username, tenant_name, role, password_env):
    """Create a console account with a role in a tenant."""
    migrate()
    from django.contrib.auth import get_user_model

    from bastion.tenancy.services import create_administrator

    tenant_obj = find_tenant(tenant_name)
    existed = get_user_model().objects.filter(username=username).exists()
    password = secret_input(password_env, "Password")
    try:
        user = create_administrator(tenant_obj, username, password, role)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    record_cli(tenant_obj, "membership.set", "user", user.pk, role=role)
    if existed:
        click.echo(
            f"{username} already existed: now {role} in {tenant_obj.name}, password unchanged "
            f"(bastion admin password {username} sets a new one)"
        )
    else:
        click.echo(f"Created {username} ({role}) in {tenant_obj.name}")


@admin.command(name="password")
@click.argument("username")
@click.option("--password-env", help="Read the password from this environment variable.")
def admin_password(username, password_env):
    """Set a new password for a console account."""
    migrate()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise click.ClickException(f"username: no console account {username!r}")
    password = secret_input(password_env, "Password")
    try:
        if len(password) < 10:
            raise ValidationError("use at least 10 characters")
        validate_password(password, user)
    except ValidationError as error:
        raise click.ClickException("password: " + " ".join(error.messages)) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    from bastion.tenancy.models import Membership

    for membership in Membership.objects.filter(user=user).select_related("tenant"):
        record_cli(membership.tenant, "account.password", "user", user.pk)
    click.echo(f"New password set for {username}")


# MDM integrations.


@main.group()
def mdm():
    """MDM integrations: add, list, test, remove."""


@mdm.command(name="add")
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--kind", type=click.Choice(["core", "cloud"]), required=True)
@click.option("--url", required=True)
@click.option("--username", required=True)
@click.option("--password-env", help="Read the MDM password from this environment variable.")
@click.option("--space", default="", help="Space id or name (default: the default space).")
@click.option("--group", "groups", multiple=True, help="Label or device group, highest first.")
@click.option("--no-sync-users", is_flag=True)
@click.option("--synced-password-env", help="Override the synced users' password.")
@click.option("--mask-users", is_flag=True)
@click.option("--email-ios", is_flag=True)
@click.option("--email-android", is_flag=True)
@click.option("--interval", type=int, help="Minutes between syncs (default 240).")
@click.option("--json", "as_json", is_flag=True)
def mdm_add(name, tenant_name, kind, url, username, password_env, space, groups, **flags):
    """Add an MDM integration, after testing the connection."""
    migrate()
    from bastion.mdm.connectors.base import MdmError
    from bastion.mdm.services import (
        IntegrationSettings,
        InvalidInput,
        build_connector,
        create_integration,
        resolve_groups,
        resolve_space,
    )

    tenant_obj = find_tenant(tenant_name)
    password = secret_input(password_env, "Password")
    synced = ""
    if flags["synced_password_env"]:
        synced = secret_input(flags["synced_password_env"], "Synced users password")

    connector = build_connector(kind, url, username, password)
    try:
        report = connector.test_connection()
        if not report.ok:
            raise click.ClickException(
                f"connection test failed ({report.problem}): {report.message}"
            )
        space_id, space_name = resolve_space(connector, space)
        chosen = resolve_groups(connector.list_groups(space_id), list(groups))
        values = IntegrationSettings(
            kind=kind,
            name=name,
            url=url,
            username=username,
            password=password,
            space_id=space_id,
            space_name=space_name,
            sync_users=not flags["no_sync_users"],
            synced_password=synced,
            mask_users=flags["mask_users"],
            email_ios=flags["email_ios"],
            email_android=flags["email_android"],
            sync_interval_minutes=flags["interval"],
        )
        integration = create_integration(tenant_obj, values, chosen)
        record_cli(
            tenant_obj,
            "integration.create",
            "integration",
            integration.pk,
            kind=kind,
            groups=[group.id for group in chosen],
        )
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    except MdmError as error:
        raise click.ClickException(f"the MDM answered: {error}") from None
    finally:
        connector.close()

    data = integration_summary(integration)
    emit(data, flags["as_json"], f"Added {integration.name}: {len(chosen)} group(s) selected")


def integration_summary(integration) -> dict:
    return {
        "name": integration.name,
        "kind": integration.kind,
        "url": integration.url,
        "space": integration.space_name,
        "groups": [g.mdm_group_name for g in integration.selected_groups()],
        "status": integration.status,
        "last_sync_at": integration.last_sync_at,
        "last_error": integration.last_error,
        "sync_interval_minutes": integration.sync_interval_minutes,
    }


@mdm.command(name="list")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def mdm_list(tenant_name, as_json):
    migrate()
    tenant_obj = find_tenant(tenant_name)
    rows = [integration_summary(i) for i in tenant_obj.integrations.order_by("name")]
    lines = [f"{r['name']}\t{r['kind']}\t{r['status']}\t{', '.join(r['groups'])}" for r in rows]
    emit(rows, as_json, "\n".join(lines) or "no MDM yet")


@mdm.command(name="test")
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def mdm_test(name, tenant_name, as_json):
    """Test an integration's connection and the permissions each call needs."""
    migrate()
    from bastion.mdm.services import connector_for

    integration = find_integration(name, tenant_name)
    connector = connector_for(integration)
    try:
        report = connector.test_connection()
    finally:
        connector.close()

    lines = [f"{'OK' if report.ok else 'FAILED'} {report.problem} {report.message}".strip()]
    for check in report.checks:
        mark = {True: "ok", False: "FAIL", None: "--"}[check.ok]
        role = f" (role: {check.role})" if check.role else ""
        lines.append(f"  [{mark}] {check.name}{role} {check.detail}".rstrip())
    lines += [f"  warning: {warning}" for warning in report.warnings]
    emit(asdict(report), as_json, "\n".join(lines))
    if not report.ok:
        sys.exit(1)


@mdm.command(name="groups")
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True)
def mdm_groups(name, tenant_name, as_json):
    """List the MDM's labels or device groups, and whether each can be a response target."""
    migrate()
    from bastion.mdm.services import connector_for

    integration = find_integration(name, tenant_name)
    connector = connector_for(integration)
    try:
        listed = connector.list_groups(integration.space_id)
    finally:
        connector.close()
    selected = {g.mdm_group_id: g.priority for g in integration.selected_groups()}
    rows = [
        {
            "id": g.id,
            "name": g.name,
            "devices": g.device_count,
            "selected_priority": selected.get(g.id),
            "target_blocker": g.target_blocker,
        }
        for g in listed
    ]
    lines = []
    for row in rows:
        priority = row["selected_priority"]
        selected = f"selected #{priority + 1}" if priority is not None else ""
        target = "can answer threats" if not row["target_blocker"] else row["target_blocker"]
        lines.append(f"{row['id']}\t{row['name']}\t{selected}\t{target}")
    emit(rows, as_json, "\n".join(lines))


@mdm.command(name="remove")
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
@click.option(
    "--undo-actions/--leave-actions",
    default=None,
    help="Undo the labels, attributes Bastion applied through this MDM, or leave them.",
)
def mdm_remove(name, tenant_name, yes, undo_actions):
    """Remove an integration; its devices leave the inventory, their threat history stays."""
    migrate()
    from bastion.mdm.services import remove_integration

    integration = find_integration(name, tenant_name)
    devices = integration.devices.exclude(state="removed").count()
    if undo_actions is None and not yes:
        undo_actions = click.confirm(
            "Undo the MDM actions Bastion applied to these devices (labels, attributes)?",
            default=integration.undo_actions_on_removal,
        )
    if not yes:
        click.confirm(
            f"Remove {integration.name}? {devices} device(s) leave the inventory, their "
            "threat history stays",
            abort=True,
        )
    tenant_obj, integration_id = integration.tenant, integration.pk
    remove_integration(integration, undo_actions=undo_actions)
    record_cli(
        tenant_obj,
        "integration.remove",
        "integration",
        integration_id,
        undo_actions=bool(undo_actions),
    )
    click.echo(f"Removed {name}")


# Syncing.


@main.command()
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON.")
@click.option("--queue", is_flag=True, help="Hand the sync to a worker instead of running here.")
def sync(name, tenant_name, as_json, queue):
    """Sync one integration now, with a progress bar."""
    migrate()
    from bastion.mdm.models import SyncRun

    integration = find_integration(name, tenant_name)
    if queue:
        from bastion.mdm.tasks import enqueue_sync

        run_obj = enqueue_sync(integration, SyncRun.MANUAL)
        run_obj = follow_run(run_obj.pk, show=not as_json)
    else:
        run_obj = run_sync(integration, show=not as_json)

    data = run_summary(run_obj)
    emit(data, as_json, describe_run(integration.name, run_obj))
    if run_obj.status not in (SyncRun.DONE,):
        sys.exit(1 if run_obj.status == SyncRun.FAILED else 2)


def run_sync(integration, show: bool = True):
    from tqdm import tqdm

    from bastion.mdm.services import connector_for
    from bastion.mdm.sync import SyncEngine

    bar = tqdm(
        desc=f"Syncing {integration.name}", unit=" devices", disable=not show, file=sys.stderr
    )

    def progress(update):
        bar.total = update.total
        bar.n = update.done
        bar.refresh()

    connector = connector_for(integration)
    try:
        return SyncEngine(integration, connector, on_progress=progress).run()
    finally:
        connector.close()
        bar.close()


def follow_run(run_id: int, show: bool = True, timeout: float = 3600):
    from tqdm import tqdm

    from bastion.mdm.models import SyncRun

    bar = tqdm(desc="Waiting for a worker", unit=" devices", disable=not show, file=sys.stderr)
    deadline = time.monotonic() + timeout
    try:
        while True:
            run_obj = SyncRun.objects.get(pk=run_id)
            if run_obj.status == SyncRun.RUNNING:
                bar.set_description("Syncing")
            bar.total = run_obj.progress_total
            bar.n = run_obj.progress_done
            bar.refresh()
            if run_obj.status not in (SyncRun.QUEUED, SyncRun.RUNNING):
                return run_obj
            if time.monotonic() > deadline:
                raise click.ClickException("gave up waiting for the sync to finish")
            time.sleep(0.5)
    finally:
        bar.close()


def run_summary(run_obj) -> dict:
    return {
        "run": run_obj.pk,
        "integration": run_obj.integration.name,
        "trigger": run_obj.trigger,
        "status": run_obj.status,
        "started_at": run_obj.started_at,
        "finished_at": run_obj.finished_at,
        "duration_seconds": run_obj.duration.total_seconds() if run_obj.duration else None,
        "counts": run_obj.counts(),
        "error": run_obj.error,
        "messages": run_obj.messages,
    }


def describe_run(name: str, run_obj) -> str:
    counts = run_obj.counts()
    text = f"{name}: {run_obj.get_status_display()} — " + ", ".join(
        f"{key.replace('_', ' ')} {value}" for key, value in counts.items()
    )
    if run_obj.duration:
        text += f" in {run_obj.duration.total_seconds():.1f}s"
    if run_obj.error:
        text += f"\n  {run_obj.error}"
    for message in run_obj.messages:
        text += f"\n  {message}"
    return text


@main.command()
@click.argument("name")
@click.option("--tenant", "tenant_name")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def history(name, tenant_name, limit, as_json):
    """Show an integration's recent sync runs."""
    migrate()
    integration = find_integration(name, tenant_name)
    runs = list(integration.runs.order_by("-created_at")[:limit])
    rows = [run_summary(r) for r in runs]
    lines = [
        f"{r.created_at:%Y-%m-%d %H:%M:%S %Z}\t{r.trigger}\t{r.status}\t"
        + " ".join(f"{k}={v}" for k, v in r.counts().items())
        + (f"\t{r.error}" if r.error else "")
        for r in runs
    ]
    emit(rows, as_json, "\n".join(lines) or "no sync yet")


# The emulator and the demo.


@main.command()
@click.option("--devices", default=200, show_default=True, help="Fleet size per product.")
@click.option("--seed", default=1, show_default=True)
@click.option("--port", default=9443, show_default=True)
@click.option("--fleet", type=click.Path(exists=True), help="Serve this fleet file instead.")
def emulator(devices, seed, port, fleet):
    """Start the MobileIron Core and Cloud emulator with a generated fleet."""
    click.echo(
        "Accounts: Core admin / secret, Cloud admin@acme.example / secret. Bastion reaches "
        "the emulator over http: export BASTION_ALLOW_HTTP_MDM=true",
        err=True,
    )
    argv = [sys.executable, "-m", "emulators.mobileiron", "serve", "--port", str(port)]
    argv += ["--fleet", fleet] if fleet else ["--generate", str(devices), "--seed", str(seed)]
    os.execvp(sys.executable, argv)


@main.command()
@click.option("--once", is_flag=True, help="Exit after the summary (for scripts).")
@click.option("--devices", default=300, show_default=True, help="Devices per MDM.")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
def demo(once, devices, bind):
    """Emulated Core and Cloud, a tenant, both integrations synced, and a summary."""
    from bastion.demo import run_demo

    run_demo(once=once, devices=devices, bind=bind)


# Each app adds its own commands: `register(main)` in its cli module.
for _module in ("bastion.threats.cli", "bastion.activation.cli", "bastion.console.cli"):
    __import__(_module, fromlist=["register"]).register(main)


if __name__ == "__main__":
    main()
