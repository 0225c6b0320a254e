"""The sync engine: keeps a tenant's inventory in step with an integration's MDM groups.

One run fetches the selected groups in priority order, gives each device to the highest
group it is in, writes what changed in bulk a page at a time, and only when every group
was fetched completely removes the devices that are no longer in any of them.
"""

import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from bastion.inventory.models import GROUP_NAME_SEPARATOR, ConsoleGroup, Device, DeviceUser
from bastion.inventory.signals import device_tombstoned
from bastion.mdm.connectors.base import (
    Connector,
    DeviceRecord,
    Forbidden,
    MdmError,
    SkippedRecord,
    Unauthorized,
)
from bastion.mdm.models import Integration, SyncRun
from bastion.mdm.targets import learn_targets
from bastion.mdm.writer import BatchWriter, Inventory, InventoryFetcher, apps_due
from bastion.ops.metrics import sync_finished

log = logging.getLogger(__name__)

BATCH_SIZE = 500
SWITCH_INTERVAL = float(__import__("os").environ.get("SWI", "0.0005"))
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
    user_best: dict[int, int] = field(default_factory=dict)  # user pk -> group priority
    skipped: Counter = field(default_factory=Counter)
    totals: dict[str, int] = field(default_factory=dict)
    writer: BatchWriter | None = None


# What a broken database connection raises: Django's errors, and the driver's own where the
# sync uses its cursor directly (COPY).
LOST_CONNECTION = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
# How long a sync that lost its database waits for it to answer again to record the end.
LOST_DATABASE_WAIT_SECONDS = 60


def end_run_after_lost_database(run_id: int, error: Exception) -> str:
    """Records as failed a run whose database connection broke mid-sync (a restarted or
    failed-over server); returns the run's status, "unknown" if the database stayed away.

    The engine records a failed run itself, but through the connection that broke, so the
    run would stay "running" and block every sync of the integration until its heartbeat is
    ten minutes old. This waits for the database on a new connection instead. What the run
    committed before the loss stays; the next sync completes the inventory.
    """
    message = (
        f"the database connection was lost during the sync ({_first_line(error)}); "
        "what was written before stays, and the next sync completes the inventory"
    )
    deadline = time.monotonic() + LOST_DATABASE_WAIT_SECONDS
    while True:
        try:
            connection.close()
        except DatabaseError:
            pass
        try:
            return _record_lost_database(run_id, message)
        except LOST_CONNECTION:
            if time.monotonic() > deadline:
                log.error("sync run=%s stays running: the database did not come back", run_id)
                return "unknown"
            time.sleep(1)


def _connection_usable() -> bool:
    try:
        return connection.connection is not None and connection.is_usable()
    except DatabaseError:
        return False


def _record_lost_database(run_id: int, message: str) -> str:
    now = timezone.now()
    run = SyncRun.objects.select_related("integration").filter(pk=run_id).first()
    ended = SyncRun.objects.filter(pk=run_id, status=SyncRun.RUNNING).update(
        status=SyncRun.FAILED, finished_at=now, heartbeat_at=now, error=message
    )
    if run is None or not ended:
        # The engine recorded the end itself: the connection had survived the error.
        return run.status if run is not None else "gone"

    integration = run.integration
    integration.status = Integration.FAILED
    integration.last_error = message
    integration.last_sync_at = now
    integration.next_sync_at = now + timedelta(minutes=integration.sync_interval_minutes)
    integration.save(update_fields=["status", "last_error", "last_sync_at", "next_sync_at"])
    if run.started_at:
        sync_finished(SyncRun.FAILED, (now - run.started_at).total_seconds())
    return SyncRun.FAILED


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


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
        except Exception as error:
            if isinstance(error, LOST_CONNECTION) and not _connection_usable():
                # Recording the end through the connection that broke would fail too.
                log.warning("sync lost the database run=%s: %s", run.pk, _first_line(error))
                run.status = end_run_after_lost_database(run.pk, error)
                return run
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
        sync_finished(run.status, time.monotonic() - started)
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
        fetcher = InventoryFetcher(self.integration, self.connector, self.space)
        writer = BatchWriter(self, by_mdm_id, fetcher)
        writer.index()
        state.writer = writer
        batch: list[tuple[DeviceRecord, ConsoleGroup]] = []
        inventory = Inventory()

        pages = self.connector.iter_devices(self.space, [g.mdm_group_id for g in groups])
        with relaxed_commits():
            try:
                for page, fetched in prefetch(with_inventory(pages, writer, fetcher, by_mdm_id)):
                    inventory.add(fetched)
                    if page.total is not None:
                        state.totals[page.key] = page.total
                    for record in page.records:
                        group = self._place(record, by_mdm_id, state)
                        if group is not None:
                            batch.append((record, group))

                    if len(batch) >= BATCH_SIZE:
                        writer.write(batch, run, state, inventory)
                        batch, inventory = [], Inventory()
                    self._heartbeat(run, state)

                if batch:
                    writer.write(batch, run, state, inventory)
            finally:
                run.messages = run.messages + fetcher.messages
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
        if not state.user_best or state.writer is None:
            return

        group_by_priority = {
            group.priority: group.pk for group in self.integration.selected_groups()
        }
        moves: dict[int, list[int]] = {}
        for pk, current in state.writer.user_groups(state.user_best).items():
            wanted = group_by_priority.get(state.user_best[pk])
            if wanted and current != wanted:
                moves.setdefault(wanted, []).append(pk)

        # One UPDATE per group and chunk: far cheaper than a per-row CASE.
        for group_id, pks in moves.items():
            for start in range(0, len(pks), BATCH_SIZE):
                DeviceUser.objects.filter(pk__in=pks[start : start + BATCH_SIZE]).update(
                    group_id=group_id
                )

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


@contextmanager
def relaxed_commits():
    """PostgreSQL commits of the sync's batches without waiting for the disk flush.

    A crash of the database can then lose the last moments of batches, never corrupt
    them, and the next sync writes them again; the run's final status is committed after
    this, durably. It spares a 100,000-device sync hundreds of flush waits.
    """
    relaxed = connection.vendor == "postgresql"
    if relaxed:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        if relaxed:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("RESET synchronous_commit")
            except DatabaseError:
                pass  # the connection is gone, and with it the setting


def with_inventory(pages, writer: BatchWriter, fetcher: InventoryFetcher, selected: dict):
    """Pairs each page with the app and profile inventories its due devices need.

    Runs in the prefetch thread, so the MDM's answers arrive while earlier pages are
    written. A device is due when the writer's index doesn't hold it or it checked in since
    its apps were last fetched; the writer fetches what this could not tell.
    """
    asked: set[str] = set()
    for page in pages:
        due = []
        for record in page.records:
            if not isinstance(record, DeviceRecord) or not record.active:
                continue
            if record.mdm_id in asked or not any(g in selected for g in record.groups):
                continue
            checkin = writer.apps_checkin(record.mdm_id)
            if checkin is False or apps_due(checkin, record):
                due.append(record)
                asked.add(record.mdm_id)
        inventory = Inventory()
        for start in range(0, len(due), BATCH_SIZE):
            inventory.add(fetcher.fetch(due[start : start + BATCH_SIZE]))
        yield page, inventory


def prefetch(iterator, depth: int = 3):
    """Yields from `iterator` while a thread fetches the next items.

    The MDM's next page is on its way while this page is written, so a sync costs little
    more than the fetch itself. Errors in the fetching thread are raised here; stopping
    early stops the thread.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("done", done))
        except BaseException as error:  # handed to the consumer, which decides
            items.put(("error", error))

    thread = threading.Thread(target=produce, name="sync-prefetch", daemon=True)
    # The writing thread rarely waits, so at the default 5 ms a fetching thread that got
    # an answer would queue that long for the interpreter after every read.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)
        sys.setswitchinterval(interval)


def console_group_name(mdm_name: str, group_name: str) -> str:
    return f"{mdm_name}{GROUP_NAME_SEPARATOR}{group_name}"


def devices_removed(device_ids: list[int]) -> None:
    """Runs inside the transaction that tombstones devices: ends what they were given."""
    device_tombstoned.send(sender=Device, device_ids=device_ids)


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
    fetcher = InventoryFetcher(integration, connector, integration.space_id)
    BatchWriter(engine, groups, fetcher).write([(record, group)], run, _State())
    run.messages = fetcher.messages
    run.status = SyncRun.DONE
    run.error = ""
    run.finished_at = timezone.now()
    run.save()
    return Device.objects.get(integration=integration, mdm_id=record.mdm_id)
