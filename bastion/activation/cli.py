"""This app's `bastion` subcommands: `bastion activation …`."""

import getpass
import sys

import click


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _integration(name: str, tenant_name: str | None):
    from bastion.cli import find_integration, setup_django

    setup_django()
    return find_integration(name, tenant_name)


def register(main) -> None:
    """Adds this app's commands to the `bastion` command group."""
    from bastion.cli import emit, find_tenant, migrate, setup_django

    @main.group()
    def activation():
        """Activation codes, links, managed app config files and re-activation approvals."""
        # Every subcommand reads the database: Django must be ready before their imports.
        migrate()

    @activation.command(name="code")
    @click.argument("mdm")
    @click.option("--tenant", "tenant_name")
    @click.option("--json", "as_json", is_flag=True)
    def code(mdm, tenant_name, as_json):
        """Show the MDM's MTD activation code in full (audited)."""
        from bastion.activation import services

        shown = services.show_code(_integration(mdm, tenant_name), _actor())
        emit(shown, as_json, shown["code"])
        if shown["stale"] and not as_json:
            from django.conf import settings

            click.echo(
                f"This code sends devices to {shown['address']}, but Bastion's public URL is "
                f"now {settings.BASTION_PUBLIC_URL}: replace it with "
                f"bastion activation rotate-code {mdm!r}",
                err=True,
            )

    @activation.command(name="rotate-code")
    @click.argument("mdm")
    @click.option("--tenant", "tenant_name")
    @click.option("--json", "as_json", is_flag=True)
    def rotate_code(mdm, tenant_name, as_json):
        """Replace the MTD activation code; devices already active stay active."""
        from bastion.activation import services

        shown = services.rotate_code(_integration(mdm, tenant_name), _actor())
        emit(shown, as_json, shown["code"])

    @activation.command(name="link")
    @click.argument("mdm")
    @click.option("--tenant", "tenant_name")
    @click.option("--json", "as_json", is_flag=True)
    def link(mdm, tenant_name, as_json):
        """Show the activation link with its expiry (audited)."""
        from bastion.activation import services

        shown = services.show_link(_integration(mdm, tenant_name), _actor())
        emit(shown, as_json, f"{shown['link']}\nexpires {shown['expires_shown']}")

    @activation.command(name="regenerate-link")
    @click.argument("mdm")
    @click.option("--tenant", "tenant_name")
    @click.option("--days", type=int, help="Valid for this many days (default 30).")
    @click.option("--expires", "expires_at", help="ISO 8601 expiry, e.g. 2030-01-31T18:00.")
    @click.option("--time-zone", help="Zone of --expires when it has no offset.")
    @click.option("--json", "as_json", is_flag=True)
    def regenerate_link(mdm, tenant_name, days, expires_at, time_zone, as_json):
        """Replace the activation link; devices it activated stay active."""
        from bastion.activation import services

        integration = _integration(mdm, tenant_name)
        try:
            shown = services.regenerate_link(
                integration, _actor(), expires_at=expires_at, days=days, time_zone=time_zone
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        emit(shown, as_json, f"{shown['link']}\nexpires {shown['expires_shown']}")

    @activation.command(name="files")
    @click.argument("mdm")
    @click.option("--tenant", "tenant_name")
    @click.option("--file", "name", help="Print or save this file (see the list).")
    @click.option("--output", type=click.Path(dir_okay=False), help="Save the file here.")
    @click.option("--json", "as_json", is_flag=True)
    def files_command(mdm, tenant_name, name, output, as_json):
        """List the downloadable files, or print or save one of them."""
        from bastion.activation import files, services

        integration = _integration(mdm, tenant_name)
        if not name:
            rows = [
                {"name": key, "title": title, "bundle_id": files.bundle_id()}
                for key, title in files.FILES.items()
            ]
            text = "\n".join(f"{row['name']:15} {row['title']}" for row in rows)
            text += f"\nagent bundle id: {files.bundle_id()}"
            emit(rows, as_json, text)
            return

        try:
            rendered = services.download(integration, name, _actor())
        except KeyError:
            raise click.ClickException(f"--file: choose one of {', '.join(files.FILES)}") from None
        if output:
            with open(output, "wb") as handle:
                handle.write(rendered.content)
            emit({"file": name, "saved": output}, as_json, f"saved {output}")
        elif as_json:
            emit({"file": name, "filename": rendered.filename,
                  "content": rendered.content.decode()}, True)  # fmt: skip
        else:
            sys.stdout.buffer.write(rendered.content)
            sys.stdout.flush()

    @activation.command(name="pending")
    @click.option("--tenant", "tenant_name")
    @click.option("--json", "as_json", is_flag=True)
    def pending(tenant_name, as_json):
        """Re-activations waiting for an administrator's approval."""
        from bastion.activation import services

        setup_django()
        rows = services.pending_requests(find_tenant(tenant_name))
        text = "\n".join(
            f"{row['id']:>6}  device {row['device_id']}  {row['platform']:8} {row['method']:7} "
            f"{row['created_at']:%Y-%m-%d %H:%M:%S %Z}  {row['group']}"
            for row in rows
        )
        emit(rows, as_json, text or "no re-activation waits for approval")

    @activation.command(name="approve")
    @click.argument("request_id", type=int)
    @click.option("--tenant", "tenant_name")
    @click.option("--reject", is_flag=True, help="Refuse the re-activation instead.")
    @click.option("--json", "as_json", is_flag=True)
    def approve(request_id, tenant_name, reject, as_json):
        """Approve (or --reject) a held re-activation."""
        from bastion.activation import engine, services

        setup_django()
        tenant = find_tenant(tenant_name)
        try:
            held = engine.decide(tenant, request_id, not reject, _actor())
        except (LookupError, ValueError) as error:
            raise click.ClickException(str(error)) from None
        view = services.request_view(held)
        emit(view, as_json, f"request {held.pk}: {held.status}")
