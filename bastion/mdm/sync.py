"""The sync engine: keeps a tenant's inventory in step with an integration's MDM groups.

One run fetches the selected groups in priority order, gives each device to the highest
group it is in, writes what changed in bulk a page at a time, and only when every group
was fetched completely removes the devices that are no longer in any of them.
"""

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bastion import crypto
from bastion.inventory.models import (
    App,
    ConsoleGroup,
    Device,
    DeviceApp,
    DeviceProfile,
    DeviceUser,
    Profile,
)
from bastion.inventory.signals import device_tombstoned, devices_added, devices_moved
from bastion.mdm.connectors.base import (
    Connector,
    DeviceRecord,
    Forbidden,
    MdmError,
    NotFound,
    SkippedRecord,
    Unauthorized,
)
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.targets import learn_targets

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A running sync whose heartbeat is older than this was left behind by a dead worker.
STALE_AFTER = timedelta(minutes=10)


@dataclass
class Progress:
    done: int
    total: int | None


@dataclass
class _State:
    """What one run has learnt so far; small enough for 100,000 devices."""

    assigned: dict[str, int] = field(default_factory=dict)  # mdm_id -> group priority
    user_best: dict[str, int] = field(default_factory=dict)  # user_key -> group priority
    skipped: Counter = field(default_factory=Counter)
    totals: dict[str, int] = field(default_factory=dict)
    processed: int = 0


def claim_run(
    integration: Integration, trigger: str, run: SyncRun | None = None
) -> tuple[SyncRun, bool]:
    """Moves a queued run to running. Returns the run and whether this caller owns it.

    A compare-and-set on the run's status lets only one worker take a run that was
    delivered twice; the partial unique index on running runs keeps two runs of one
    integration apart, and the loser is recorded as skipped.
    """
    now = timezone.now()
    SyncRun.objects.filter(
        integration=integration, status=SyncRun.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    ).update(
        status=SyncRun.FAILED,
        finished_at=now,
        error="abandoned: the process running this sync stopped",
    )

    if run is None:
        run = SyncRun.objects.create(integration=integration, trigger=trigger, created_at=now)
    try:
        with transaction.atomic():
            claimed = SyncRun.objects.filter(pk=run.pk, status=SyncRun.QUEUED).update(
                status=SyncRun.RUNNING, started_at=now, heartbeat_at=now
            )
    except IntegrityError:
        SyncRun.objects.filter(pk=run.pk, status=SyncRun.QUEUED).update(
            status=SyncRun.SKIPPED,
            finished_at=now,
            error="skipped: another sync of this integration was running",
        )
        claimed = 0
        log.info("sync skipped integration=%s run=%s", integration.pk, run.pk)

    run.refresh_from_db()
    return run, bool(claimed)


class SyncEngine:
    def __init__(
        self,
        integration: Integration,
        connector: Connector,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ):
        self.integration = integration
        self.tenant = integration.tenant
        self.connector = connector
        self.on_progress = on_progress
        self.space = integration.space_id

    def run(self, trigger: str = SyncRun.MANUAL, run: SyncRun | None = None) -> SyncRun:
        run, owned = claim_run(self.integration, trigger, run)
        if not owned:
            return run

        Integration.objects.filter(pk=self.integration.pk).update(status=Integration.SYNCING)
        log.info("sync started integration=%s run=%s", self.integration.pk, run.pk)
        started = time.monotonic()
        try:
            complete = self._sync(run)
        except Unauthorized as error:
            self._finish(
                run, SyncRun.FAILED, Integration.AUTH_FAILED, f"credentials rejected: {error}"
            )
        except Forbidden as error:
            role = f" (missing role: {error.role})" if error.role else ""
            self._finish(
                run, SyncRun.FAILED, Integration.FAILED, f"permission denied{role}: {error}"
            )
        except MdmError as error:
            self._finish(run, SyncRun.FAILED, Integration.FAILED, str(error))
        except Exception:
            log.exception("sync crashed integration=%s run=%s", self.integration.pk, run.pk)
            self._finish(run, SyncRun.FAILED, Integration.FAILED, "internal error; see the logs")
            raise
        else:
            if complete:
                self._finish(run, SyncRun.DONE, Integration.OK, "")
            else:
                self._finish(run, SyncRun.PARTIAL, Integration.FAILED, run.error)

        log.info(
            "sync finished integration=%s run=%s status=%s seconds=%.1f seen=%d added=%d "
            "updated=%d moved=%d removed=%d skipped=%d",
            self.integration.pk, run.pk, run.status, time.monotonic() - started, run.seen,
            run.added, run.updated, run.moved, run.removed, run.skipped,
        )  # fmt: skip
        return run

    # The steps of one run.

    def _sync(self, run: SyncRun) -> bool:
        groups = list(self.integration.selected_groups())
        listed = self.connector.list_groups(self.space)
        selected_ids = {group.mdm_group_id for group in groups}
        learn_targets(self.integration, listed, selected_ids)

        by_id = {group.id: group for group in listed}
        missing = [group for group in groups if group.mdm_group_id not in by_id]
        groups = [group for group in groups if group.mdm_group_id in by_id]
        self._rename_groups(groups, by_id)
        if not self.integration.sync_users:
            run.messages = ["sync users is off: only MDM action targets were refreshed"]
            return True
        if not groups and not missing:
            run.messages = ["no group is selected: nothing to sync"]
            return True

        state = _State()
        fetch_error: MdmError | None = None
        try:
            self._fetch_and_write(run, groups, state)
        except (Unauthorized, Forbidden):
            raise
        except MdmError as error:
            fetch_error = error

        complete = fetch_error is None and not missing
        if complete:
            run.removed = self._sweep(state)
        self._assign_users(state)

        run.skipped = sum(state.skipped.values())
        run.messages = run.messages + [
            f"skipped {count}: {reason}" for reason, count in state.skipped.most_common(20)
        ]
        problems = []
        if missing:
            names = ", ".join(group.mdm_group_name for group in missing)
            problems.append(f"selected groups no longer in the MDM: {names}")
        if fetch_error is not None:
            problems.append(f"fetch incomplete: {fetch_error}")
        if problems:
            run.error = "; ".join(problems) + "; nothing was removed"
        return complete

    def _rename_groups(self, groups: list[ConsoleGroup], by_id: dict) -> None:
        for group in groups:
            listed = by_id.get(group.mdm_group_id)
            if listed is None or listed.name == group.mdm_group_name:
                continue
            group.mdm_group_name = listed.name
            group.name = console_group_name(self.integration.name, listed.name)
            group.save(update_fields=["mdm_group_name", "name"])

    def _fetch_and_write(self, run: SyncRun, groups: list[ConsoleGroup], state: _State) -> None:
        by_mdm_id = {group.mdm_group_id: group for group in groups}
        writer = _BatchWriter(self, by_mdm_id)
        batch: list[tuple[DeviceRecord, ConsoleGroup]] = []
        known_counts = {group.mdm_group_id: 0 for group in groups}

        for page in self.connector.iter_devices(self.space, [g.mdm_group_id for g in groups]):
            if page.total is not None:
                state.totals[page.key] = page.total
            for record in page.records:
                state.processed += 1
                group = self._place(record, by_mdm_id, state)
                if group is not None:
                    batch.append((record, group))
                    known_counts[group.mdm_group_id] += 1

            if len(batch) >= BATCH_SIZE:
                writer.write(batch, run, state)
                batch = []
            self._heartbeat(run, state)

        if batch:
            writer.write(batch, run, state)
        # Totals count a device once per group it is in; the finished bar shows 100 %.
        state.totals = {"": len(state.assigned)}
        self._heartbeat(run, state, force=True)

    def _place(self, record, by_mdm_id: dict, state: _State) -> ConsoleGroup | None:
        if isinstance(record, SkippedRecord):
            state.skipped[record.reason] += 1
            return None
        if not record.active:
            state.skipped["not active in the MDM"] += 1
            return None

        candidates = [by_mdm_id[g] for g in record.groups if g in by_mdm_id]
        if not candidates:
            state.skipped["in no selected group"] += 1
            return None
        group = min(candidates, key=lambda g: g.priority)

        # Groups come highest first, so the first sighting of a device is its best group.
        earlier = state.assigned.get(record.mdm_id)
        if earlier is not None and earlier <= group.priority:
            return None
        state.assigned[record.mdm_id] = group.priority
        return group

    def _heartbeat(self, run: SyncRun, state: _State, force: bool = False) -> None:
        now = timezone.now()
        if not force and run.heartbeat_at and now - run.heartbeat_at < timedelta(seconds=1):
            return

        run.heartbeat_at = now
        run.progress_done = len(state.assigned)
        total = sum(state.totals.values()) or None
        run.progress_total = max(total, run.progress_done) if total else None
        SyncRun.objects.filter(pk=run.pk).update(
            heartbeat_at=now,
            progress_done=run.progress_done,
            progress_total=run.progress_total,
            seen=run.seen,
            added=run.added,
            updated=run.updated,
            moved=run.moved,
        )
        if self.on_progress:
            self.on_progress(Progress(run.progress_done, run.progress_total))

    def _sweep(self, state: _State) -> int:
        """Tombstones the devices of this integration that no selected group holds now."""
        present = Device.objects.filter(integration=self.integration).exclude(state=Device.REMOVED)
        gone = [
            pk for pk, mdm_id in present.values_list("pk", "mdm_id") if mdm_id not in state.assigned
        ]
        if not gone:
            return 0

        now = timezone.now()
        for start in range(0, len(gone), BATCH_SIZE):
            chunk = gone[start : start + BATCH_SIZE]
            with transaction.atomic():
                Device.objects.filter(pk__in=chunk).update(state=Device.REMOVED, removed_at=now)
                devices_removed(chunk)
        return len(gone)

    def _assign_users(self, state: _State) -> None:
        """Gives each user the highest group among their devices in this integration."""
        if not state.user_best:
            return

        group_by_priority = {
            group.priority: group.pk for group in self.integration.selected_groups()
        }
        keys = list(state.user_best)
        for start in range(0, len(keys), BATCH_SIZE):
            chunk = keys[start : start + BATCH_SIZE]
            users = DeviceUser.objects.filter(tenant=self.tenant, user_key__in=chunk).only(
                "pk", "user_key", "group_id"
            )
            changed = []
            for user in users:
                group_id = group_by_priority.get(state.user_best[user.user_key])
                if group_id and user.group_id != group_id:
                    user.group_id = group_id
                    changed.append(user)
            DeviceUser.objects.bulk_update(changed, ["group"], batch_size=BATCH_SIZE)

    def _finish(self, run: SyncRun, status: str, integration_status: str, error: str) -> None:
        now = timezone.now()
        run.status = status
        run.finished_at = now
        run.error = error
        run.heartbeat_at = now
        run.save()

        integration = self.integration
        integration.status = integration_status
        integration.last_error = error
        integration.last_sync_at = now
        if status == SyncRun.DONE:
            integration.last_success_at = now
        integration.next_sync_at = now + timedelta(minutes=integration.sync_interval_minutes)
        integration.save(
            update_fields=[
                "status",
                "last_error",
                "last_sync_at",
                "last_success_at",
                "next_sync_at",
                "profiles_unavailable",
            ]
        )


def console_group_name(mdm_name: str, group_name: str) -> str:
    return f"{mdm_name}{' / '}{group_name}"


def devices_removed(device_ids: list[int]) -> None:
    """Runs inside the transaction that tombstones devices: ends what they were given."""
    device_tombstoned.send(sender=Device, device_ids=device_ids)


def fingerprint(record: DeviceRecord, group_id: int, user_key: str, hashes: tuple) -> str:
    parts = (
        record.platform,
        record.os_version,
        record.model,
        record.manufacturer,
        record.name,
        record.guid,
        hashes[0],
        hashes[1],
        record.last_checkin.isoformat() if record.last_checkin else "",
        user_key,
        str(group_id),
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


class _BatchWriter:
    """Writes one batch of placed records: users, devices, then apps and profiles."""

    def __init__(self, engine: SyncEngine, groups: dict[str, ConsoleGroup]):
        self.engine = engine
        self.integration = engine.integration
        self.tenant = engine.tenant
        self.connector = engine.connector
        self.groups = groups
        self.anonymous = self.tenant.anonymous_users
        self.password_hash = self.integration.synced_password_hash or make_password(
            self.tenant.default_synced_password()
        )
        self.apps_available = True
        self.profiles_available = self.integration.kind == Integration.CORE

    def write(self, batch: list[tuple[DeviceRecord, ConsoleGroup]], run: SyncRun, state) -> None:
        user_keys = self._write_users(batch, run, state)
        with transaction.atomic():
            fetch = self._write_devices(batch, user_keys, run)
        if fetch:
            self._write_apps(fetch, run)
            self._write_profiles(fetch, run)

    def _write_users(self, batch, run: SyncRun, state) -> dict[str, str]:
        """Creates and updates the batch's users; returns mdm_id -> user_key."""
        wanted = {}
        keys_by_device = {}
        for record, group in batch:
            user = record.user
            if user is None:
                continue
            key = crypto.identity_hash(user.uid or user.email)
            if not key:
                continue
            keys_by_device[record.mdm_id] = key
            wanted[key] = user
            best = state.user_best.get(key)
            if best is None or group.priority < best:
                state.user_best[key] = group.priority

        existing = {
            user.user_key: user
            for user in DeviceUser.objects.filter(tenant=self.tenant, user_key__in=list(wanted))
        }
        create, update = [], []
        for key, record in wanted.items():
            fields = self._user_fields(record)
            user = existing.get(key)
            if user is None:
                create.append(DeviceUser(tenant=self.tenant, user_key=key, **fields))
                continue
            if any(getattr(user, name) != value for name, value in fields.items()):
                for name, value in fields.items():
                    setattr(user, name, value)
                update.append(user)

        DeviceUser.objects.bulk_create(create, batch_size=BATCH_SIZE, ignore_conflicts=True)
        DeviceUser.objects.bulk_update(update, list(self._user_fields(None)), batch_size=BATCH_SIZE)
        run.users_added += len(create)
        return keys_by_device

    def _user_fields(self, record) -> dict:
        if record is None:
            return dict.fromkeys(
                ["email", "first_name", "last_name", "display_name", "password_hash", "masked"]
            )
        masked = self.integration.mask_users
        if self.anonymous:
            return {
                "email": "",
                "first_name": "",
                "last_name": "",
                "display_name": "",
                "password_hash": self.password_hash,
                "masked": masked,
            }
        return {
            "email": record.email,
            "first_name": record.first_name,
            "last_name": record.last_name,
            "display_name": record.display_name,
            "password_hash": self.password_hash,
            "masked": masked,
        }

    def _write_devices(self, batch, user_keys: dict[str, str], run: SyncRun) -> list:
        """Upserts the batch's devices; returns (device, record) pairs whose apps are due."""
        ids = [record.mdm_id for record, _ in batch]
        existing = {
            device.mdm_id: device
            for device in Device.objects.filter(integration=self.integration, mdm_id__in=ids)
        }
        reenrolled = self._reenrolled(batch, existing)
        users = {
            user.user_key: user.pk
            for user in DeviceUser.objects.filter(
                tenant=self.tenant, user_key__in=set(user_keys.values())
            ).only("pk", "user_key")
        }

        now = timezone.now()
        create, update, due = [], [], []
        restored_ids, moves = [], []
        for record, group in batch:
            hashes = (crypto.identity_hash(record.serial), crypto.identity_hash(record.udid))
            user_key = user_keys.get(record.mdm_id, "")
            print_ = fingerprint(record, group.pk, user_key, hashes)
            device = existing.get(record.mdm_id) or reenrolled.get(record.mdm_id)
            run.seen += 1

            if device is None:
                device = Device(
                    tenant=self.tenant,
                    integration=self.integration,
                    mdm_id=record.mdm_id,
                    state=Device.WAITING,
                    created_at=now,
                )
                self._apply(device, record, group, users.get(user_key), hashes, print_, now)
                create.append(device)
                run.added += 1
                due.append((device, record))
                continue

            restored = device.state == Device.REMOVED
            moved = device.group_id != group.pk
            if device.fingerprint == print_ and device.mdm_id == record.mdm_id and not restored:
                if self._apps_due(device, record):
                    due.append((device, record))
                continue

            device.mdm_id = record.mdm_id
            if restored:
                device.state = Device.WAITING
                device.removed_at = None
                restored_ids.append(device.pk)
                run.added += 1
            elif moved:
                moves.append((device.pk, device.group_id, group.pk))
                run.moved += 1
            else:
                run.updated += 1
            self._apply(device, record, group, users.get(user_key), hashes, print_, now)
            update.append(device)
            if self._apps_due(device, record):
                due.append((device, record))

        Device.objects.bulk_create(create, batch_size=BATCH_SIZE)
        Device.objects.bulk_update(update, DEVICE_SYNC_FIELDS, batch_size=BATCH_SIZE)
        if create or restored_ids:
            added = [device.pk for device in create] + restored_ids
            devices_added.send(sender=Device, integration=self.integration, device_ids=added)
        if moves:
            devices_moved.send(sender=Device, moves=moves)
        return due

    def _reenrolled(self, batch, existing: dict) -> dict:
        """Old records of devices that re-enrolled under a new MDM id (same serial or UDID)."""
        new = [record for record, _ in batch if record.mdm_id not in existing]
        serials = {crypto.identity_hash(r.serial): r for r in new if r.serial}
        udids = {crypto.identity_hash(r.udid): r for r in new if r.udid}
        if not serials and not udids:
            return {}

        matches = Device.objects.filter(integration=self.integration).filter(
            Q(serial_hash__in=list(serials)) | Q(udid_hash__in=list(udids))
        )
        found = {}
        batch_ids = {record.mdm_id for record, _ in batch}
        for device in matches:
            if device.mdm_id in batch_ids:
                continue  # the old id is itself still enrolled: two devices, not one
            record = serials.get(device.serial_hash) or udids.get(device.udid_hash)
            if record is not None and record.mdm_id not in found:
                found[record.mdm_id] = device
        return found

    @staticmethod
    def _apply(device, record, group, user_id, hashes, print_, now) -> None:
        device.group = group
        device.user_id = user_id
        device.platform = record.platform
        device.os_version = record.os_version
        device.model = record.model
        device.manufacturer = record.manufacturer
        device.name = record.name
        device.guid = record.guid
        device.serial_hash, device.udid_hash = hashes
        device.last_checkin = record.last_checkin
        device.fingerprint = print_
        device.synced_at = now

    @staticmethod
    def _apps_due(device: Device, record: DeviceRecord) -> bool:
        if device.apps_checkin is None:
            return True
        return record.last_checkin is not None and record.last_checkin > device.apps_checkin

    def _write_apps(self, due: list, run: SyncRun) -> None:
        if not self.apps_available:
            return
        try:
            found = self.connector.fetch_apps(self.engine.space, [record for _, record in due])
        except MdmError as error:
            # Apps are worth having, not worth failing the inventory for.
            self.apps_available = False
            run.messages = run.messages + [f"apps not fetched: {error}"]
            return

        self._replace_installs(
            due,
            found,
            model=App,
            link=DeviceApp,
            link_field="app",
            extra=lambda item: {"version": item.version[:128]},
            fields=lambda item: {"name": item.name[:255]},
        )
        now_checkins = []
        for device, record in due:
            device.apps_checkin = record.last_checkin or timezone.now()
            now_checkins.append(device)
        Device.objects.bulk_update(now_checkins, ["apps_checkin"], batch_size=BATCH_SIZE)

    def _write_profiles(self, due: list, run: SyncRun) -> None:
        ios = [(device, record) for device, record in due if record.platform == Device.IOS]
        if not self.profiles_available or not ios:
            return
        try:
            found = self.connector.fetch_profiles(self.engine.space, [record for _, record in ios])
        except (NotFound, Forbidden) as error:
            self.profiles_available = False
            reason = f"profiles unavailable: {error}"
            self.integration.profiles_unavailable = reason[:500]
            run.messages = run.messages + [reason]
            return
        except MdmError as error:
            self.profiles_available = False
            run.messages = run.messages + [f"profiles not fetched: {error}"]
            return

        self.integration.profiles_unavailable = ""
        self._replace_installs(
            ios,
            found,
            model=Profile,
            link=DeviceProfile,
            link_field="profile",
            extra=lambda item: {"installed_by_mdm": item.managed},
            fields=lambda item: {
                "name": item.name[:255],
                "organization": item.organization[:255],
                "managed": item.managed,
                "status": Profile.TRUSTED if item.managed else Profile.SUSPICIOUS,
            },
        )

    def _replace_installs(self, due, found, *, model, link, link_field, extra, fields) -> None:
        """Makes the installs of the fetched devices exactly what the MDM reported."""
        fetched = [(device, found.get(record.mdm_id, [])) for device, record in due]
        catalogue = {}
        for device, items in fetched:
            for item in items:
                catalogue[(device.platform, item.identifier[:255])] = item

        keyed_by_platform = model is App
        known = self._catalogue_ids(model, catalogue, keyed_by_platform, fields)
        with transaction.atomic():
            link.objects.filter(device__in=[device for device, _ in fetched]).delete()
            rows = []
            for device, items in fetched:
                seen = set()
                for item in items:
                    key = (device.platform, item.identifier[:255])
                    target = known.get(key if keyed_by_platform else key[1])
                    if target is None or target in seen:
                        continue
                    seen.add(target)
                    rows.append(link(device=device, **{f"{link_field}_id": target}, **extra(item)))
            link.objects.bulk_create(rows, batch_size=BATCH_SIZE)

    def _catalogue_ids(self, model, catalogue, keyed_by_platform, fields) -> dict:
        identifiers = {identifier for _, identifier in catalogue}

        def load() -> dict:
            query = model.objects.filter(tenant=self.tenant, identifier__in=identifiers)
            if keyed_by_platform:
                rows = query.values_list("platform", "identifier", "pk")
                return {(platform, ident): pk for platform, ident, pk in rows}
            return dict(query.values_list("identifier", "pk"))

        known = load()
        create = []
        for (platform, identifier), item in catalogue.items():
            key = (platform, identifier) if keyed_by_platform else identifier
            if key in known:
                continue
            extra = {"platform": platform} if keyed_by_platform else {}
            create.append(model(tenant=self.tenant, identifier=identifier, **extra, **fields(item)))
            known[key] = None
        if create:
            # ignore_conflicts: a concurrent sync of another integration may add the same app.
            model.objects.bulk_create(create, batch_size=BATCH_SIZE, ignore_conflicts=True)
            known = load()
        return known


DEVICE_SYNC_FIELDS = [
    "mdm_id",
    "group",
    "user",
    "platform",
    "os_version",
    "model",
    "manufacturer",
    "name",
    "guid",
    "serial_hash",
    "udid_hash",
    "last_checkin",
    "fingerprint",
    "synced_at",
    "state",
    "removed_at",
]


def sync_one_device(
    integration: Integration, connector: Connector, record: DeviceRecord
) -> Device | None:
    """Ad-hoc sync of one device the MDM just reported (an unknown device activating).

    Places it like a full sync would: the highest selected group among `record.groups`.
    Returns None when the MDM doesn't hold it active in any selected group.
    """
    groups = {group.mdm_group_id: group for group in integration.selected_groups()}
    candidates = [groups[mdm_group] for mdm_group in record.groups if mdm_group in groups]
    if not record.active or not candidates or not integration.sync_users:
        return None

    group = min(candidates, key=lambda g: g.priority)
    # Recorded as its own run, never "running": it must not block or be blocked by a
    # full sync of the same integration, which writes the same rows idempotently.
    run = SyncRun.objects.create(
        integration=integration,
        trigger=SyncRun.ADHOC,
        status=SyncRun.FAILED,
        started_at=timezone.now(),
        error="interrupted",
    )
    engine = SyncEngine(integration, connector)
    _BatchWriter(engine, groups).write([(record, group)], run, _State())
    run.status = SyncRun.DONE
    run.error = ""
    run.finished_at = timezone.now()
    run.save()
    return Device.objects.get(integration=integration, mdm_id=record.mdm_id)
