"""Writes one batch of placed device records: users, devices, then apps and profiles.

This is the sync's hot path. A full sync first reads a compact index of the
integration's devices and the tenant's users (a fingerprint per row), so a re-sync with
nothing changed costs no query per batch and no write; rows that do change are written in
bulk, and new rows and install rows with a plain prepared insert. App and profile
inventories arrive already fetched by the sync's prefetch thread where it could tell they
were due; the writer fetches the rest itself.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
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
from bastion.inventory.signals import devices_added, devices_moved, inventory_fetched
from bastion.mdm.connectors.base import (
    DeviceRecord,
    Forbidden,
    MdmError,
    NotFound,
    UserRecord,
)
from bastion.mdm.models import Integration, SyncRun

BATCH_SIZE = 500
EMPTY_USER = UserRecord(uid="")
DEVICE_ENTRY = ["mdm_id", "id", "fingerprint", "state", "group_id", "apps_checkin", "user_id"]
USER_FIELDS = ["email", "first_name", "last_name", "display_name", "masked"]
DEVICE_FIELDS = [
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


def fingerprint(record: DeviceRecord, group_id: int, user_mode: str) -> str:
    """A keyed digest of everything a sync writes for a device: its row and its user's.

    Equal digests tell that nothing changed, so an unchanged device costs neither a write
    nor the identity hashes. Keyed, because it covers the raw serial, UDID and user.
    """
    user = record.user or EMPTY_USER
    parts = (
        record.platform,
        record.os_version,
        record.model,
        record.manufacturer,
        record.name,
        record.guid,
        record.serial,
        record.udid,
        record.last_checkin.isoformat() if record.last_checkin else "",
        str(group_id),
        user.uid,
        user.email,
        user.first_name,
        user.last_name,
        user.display_name,
        user_mode,
    )
    return crypto.keyed_digest("\x1f".join(parts))


def has_user(record: DeviceRecord) -> bool:
    return record.user is not None and bool(record.user.uid or record.user.email)


def apps_due(apps_checkin, record: DeviceRecord) -> bool:
    """Apps are due for a device never fetched, or one that checked in since the last fetch."""
    if apps_checkin is None:
        return True
    return record.last_checkin is not None and record.last_checkin > apps_checkin


@dataclass
class Inventory:
    """Apps and profiles fetched for some devices, by MDM device id.

    `asked` holds every device a fetch was made for; `apps_asked` and `profiles_asked` the
    ones whose call answered. A device the answer leaves out keeps what was stored.
    """

    asked: set = field(default_factory=set)
    apps_asked: set = field(default_factory=set)
    apps: dict = field(default_factory=dict)
    profiles_asked: set = field(default_factory=set)
    profiles: dict = field(default_factory=dict)

    def add(self, other: "Inventory") -> None:
        self.asked |= other.asked
        self.apps_asked |= other.apps_asked
        self.apps.update(other.apps)
        self.profiles_asked |= other.profiles_asked
        self.profiles.update(other.profiles)


class InventoryFetcher:
    """Fetches app and profile inventories and remembers what the MDM can't give.

    The sync's prefetch thread and the writer share one: after a call is refused the
    other is not tried again in this run.
    """

    def __init__(self, integration: Integration, connector, space: str):
        self.integration = integration
        self.connector = connector
        self.space = space
        self.apps_available = True
        self.profiles_available = integration.kind == Integration.CORE
        self.messages: list[str] = []

    def fetch(self, records: list[DeviceRecord]) -> Inventory:
        inventory = Inventory(asked={record.mdm_id for record in records})
        apps = self._call(self.connector.fetch_apps, records, "apps")
        if apps is not None:
            inventory.apps_asked = set(inventory.asked)
            inventory.apps = apps
        ios = [record for record in records if record.platform == Device.IOS]
        if ios:
            profiles = self._call(self.connector.fetch_profiles, ios, "profiles")
            if profiles is not None:
                inventory.profiles_asked = {record.mdm_id for record in ios}
                inventory.profiles = profiles
        return inventory

    def _call(self, call, records: list, what: str):
        available = f"{what}_available"
        if not getattr(self, available):
            return None
        try:
            found = call(self.space, records)
        except (NotFound, Forbidden) as error:
            setattr(self, available, False)
            reason = f"{what} unavailable: {error}"
            if what == "profiles":
                self.integration.profiles_unavailable = reason[:500]
            self.messages.append(reason)
            return None
        except MdmError as error:
            # Worth having, not worth failing the inventory for.
            setattr(self, available, False)
            self.messages.append(f"{what} not fetched: {error}")
            return None

        if what == "profiles":
            self.integration.profiles_unavailable = ""
        return found


class BatchWriter:
    """Writes a sync's batches. `index()` first, for a full sync: one read of the
    integration's devices and the tenant's users instead of one per batch."""

    def __init__(self, engine, groups: dict[str, ConsoleGroup], fetcher: InventoryFetcher):
        self.engine = engine
        self.integration = engine.integration
        self.tenant = engine.tenant
        self.groups = groups
        self.fetcher = fetcher
        self.anonymous = self.tenant.anonymous_users
        self.mask = self.integration.mask_users
        self._password_hash = self.integration.synced_password_hash
        self.catalogue: dict[tuple, int] = {}
        # mdm_id -> [pk, fingerprint, state, group_id, apps_checkin, user_id]
        self.devices: dict[str, list] | None = None
        self.indexed: int | None = None  # how many devices the index held at the start
        # What the fingerprint must change with besides the record: how users are kept.
        self.user_mode = f"{int(self.anonymous)}{int(self.mask)}"
        self.created: set[int] = set()  # devices the current batch inserted

    def index(self) -> None:
        """Reads what the sync compares against: a few columns of every device."""
        self.devices = {}
        rows = select(Device, DEVICE_ENTRY, integration_id=self.integration.pk)
        for mdm_id, pk, print_, state, group_id, checkin, user_id in rows:
            self.devices[mdm_id] = [pk, print_, state, group_id, as_time(checkin), user_id]
        self.indexed = len(self.devices)

    def apps_checkin(self, mdm_id: str):
        """What the index knows of a device's last app fetch: None for never, or a time.

        Returns False for a device the index doesn't hold (new to this integration)."""
        entry = self.devices.get(mdm_id) if self.devices is not None else None
        if entry is None:
            return False
        return entry[4]

    @property
    def password_hash(self) -> str:
        """Hashed once per sync, and only when a user is created: argon2 per user would
        cost minutes on a large fleet, and a re-sync that creates nobody needs none."""
        if not self._password_hash:
            self._password_hash = make_password(self.tenant.default_synced_password())
        return self._password_hash

    def write(
        self,
        batch: list[tuple[DeviceRecord, ConsoleGroup]],
        run: SyncRun,
        state,
        inventory: Inventory | None = None,
    ) -> None:
        existing = self._existing_devices([record.mdm_id for record, _ in batch])
        due, rest = [], []
        for record, group in batch:
            print_ = fingerprint(record, group.pk, self.user_mode)
            entry = existing.get(record.mdm_id)
            if (
                entry is not None
                and entry[1] == print_
                and entry[2] != Device.REMOVED
                and (entry[5] is not None) == has_user(record)
            ):
                run.seen += 1
                if entry[5] is not None:
                    _note_user(state, entry[5], group)
                if apps_due(entry[4], record):
                    due.append((entry[0], record))
                continue
            rest.append((record, group, print_))

        if rest:
            with transaction.atomic():
                users = self._write_users(rest, run)
                for record, group, _ in rest:
                    if record.mdm_id in users:
                        _note_user(state, users[record.mdm_id], group)
                due += self._write_devices(rest, users, run, existing, state.assigned)
        if due:
            self._write_inventory(due, inventory or Inventory())

    # Users.

    def _existing_users(self, keys: list[str]) -> dict[str, tuple]:
        """user_key -> (pk, *USER_FIELDS) of the tenant's users among `keys`."""
        rows = select(DeviceUser, ["user_key", "id", *USER_FIELDS], tenant_id=self.tenant.pk,
                      where=("user_key", keys))  # fmt: skip
        return {row[0]: (row[1], *row[2:-1], bool(row[-1])) for row in rows}

    def _write_users(self, batch, run: SyncRun) -> dict[str, int]:
        """Creates and updates the users of (record, group, fingerprint) triples; returns
        mdm_id -> user pk."""
        wanted, key_of_device = {}, {}
        for record, _, _ in batch:
            if not has_user(record):
                continue
            key = crypto.identity_hash(record.user.uid or record.user.email)
            key_of_device[record.mdm_id] = key
            wanted[key] = record.user
        if not wanted:
            return {}

        existing = self._existing_users(list(wanted))
        create, changed = [], {}
        for key, user in wanted.items():
            values = self._user_values(user)
            entry = existing.get(key)
            if entry is None:
                values.update(
                    tenant_id=self.tenant.pk, user_key=key, password_hash=self.password_hash
                )
                create.append(values)
                continue
            # Masked once any integration that brought the user in asks for it.
            values["masked"] = values["masked"] or entry[-1]
            if tuple(values[name] for name in USER_FIELDS) != entry[1:]:
                changed[entry[0]] = values

        if create:
            insert_dicts(DeviceUser, create, ignore_conflicts=True)
            run.users_added += len(create)
            keys = [values["user_key"] for values in create]
            created = select(DeviceUser, ["user_key", "id"], tenant_id=self.tenant.pk,
                             where=("user_key", keys))  # fmt: skip
            existing.update({key: (pk,) for key, pk in created})
        if changed:
            users = [DeviceUser(pk=pk, **values) for pk, values in changed.items()]
            DeviceUser.objects.bulk_update(users, USER_FIELDS, batch_size=BATCH_SIZE)

        return {
            mdm_id: existing[key][0] for mdm_id, key in key_of_device.items() if key in existing
        }

    def user_groups(self, pks) -> dict[int, int | None]:
        """user pk -> console group id for the given users."""
        pks = set(pks)
        if len(pks) > BATCH_SIZE:  # one pass over the tenant's users beats many IN lists
            rows = select(DeviceUser, ["id", "group_id"], tenant_id=self.tenant.pk)
            return {pk: group for pk, group in rows if pk in pks}
        return dict(select(DeviceUser, ["id", "group_id"], where=("id", list(pks))))

    def _user_values(self, user) -> dict:
        if self.anonymous:
            return dict.fromkeys(USER_FIELDS[:-1], "") | {"masked": self.mask}
        return {
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "display_name": user.display_name,
            "masked": self.mask,
        }

    # Devices.

    def _existing_devices(self, ids: list[str]) -> dict[str, list]:
        if self.devices is not None:
            return {mdm_id: self.devices[mdm_id] for mdm_id in ids if mdm_id in self.devices}
        rows = select(Device, DEVICE_ENTRY, integration_id=self.integration.pk,
                      where=("mdm_id", ids))  # fmt: skip
        return {row[0]: [*row[1:5], as_time(row[5]), row[6]] for row in rows}

    def _write_devices(self, batch, users: dict, run: SyncRun, existing, enrolled) -> list:
        """Upserts the devices of (record, group, fingerprint) triples that are new or
        changed; returns (device pk, record) whose inventory is due. `enrolled` holds the
        MDM ids this sync has seen enrolled so far."""
        # The identity hashes of new devices: to find re-enrolments, and to store.
        hashes = {
            record.mdm_id: identity_hashes(record)
            for record, _, _ in batch
            if record.mdm_id not in existing
        }
        reenrolled = self._reenrolled(batch, hashes, enrolled)

        now = timezone.now()
        create, changed, due = [], {}, []
        for record, group, print_ in batch:
            run.seen += 1
            user_id = users.get(record.mdm_id)
            entry = existing.get(record.mdm_id)
            if entry is None and record.mdm_id not in reenrolled:
                values = device_values(record, group.pk, user_id, hashes.get(record.mdm_id),
                                       print_, now)  # fmt: skip
                values.update(
                    tenant_id=self.tenant.pk,
                    integration_id=self.integration.pk,
                    state=Device.WAITING,
                )
                create.append((values, record))
                continue
            pk = reenrolled[record.mdm_id] if entry is None else entry[0]
            changed[pk] = (record, group.pk, user_id, print_)

        added = []
        self.created = set()
        if create:
            # Ignoring conflicts: an ad-hoc sync of one device may have added it meanwhile.
            insert_dicts(Device, [values for values, _ in create], ignore_conflicts=True)
            ids = [record.mdm_id for _, record in create]
            stored = {
                mdm_id: (pk, print_)
                for mdm_id, pk, print_ in select(
                    Device, ["mdm_id", "id", "fingerprint"],
                    integration_id=self.integration.pk, where=("mdm_id", ids),
                )
            }  # fmt: skip
            for values, record in create:
                pk, stored_print = stored[record.mdm_id]
                if stored_print != values["fingerprint"]:
                    # Another writer's row (an ad-hoc sync of this device): updated instead.
                    changed[pk] = (record, values["group_id"], values["user_id"],
                                   values["fingerprint"])  # fmt: skip
                    continue
                run.added += 1
                added.append(pk)
                self.created.add(pk)
                due.append((pk, record))
                if self.devices is not None:
                    self.devices[record.mdm_id] = [
                        pk, values["fingerprint"], Device.WAITING, values["group_id"], None,
                        values["user_id"],
                    ]  # fmt: skip
        updated, restored, moves = self._update_devices(changed, now, run)
        due += updated

        if added or restored:
            devices_added.send(
                sender=Device, integration=self.integration, device_ids=added + restored
            )
        if moves:
            devices_moved.send(sender=Device, moves=moves)
        return due

    def _update_devices(self, changed: dict, now, run: SyncRun) -> tuple[list, list, list]:
        """Writes the changed devices, judged against their rows as they are now (locked:
        an activation meanwhile is kept). Returns (pk, record) of those whose apps are due,
        the pks of devices restored from tombstones, and the moves between groups."""
        if not changed:
            return [], [], []
        devices = list(Device.objects.select_for_update().filter(pk__in=list(changed)))
        due, restored, moves = [], [], []
        for device in devices:
            record, group_id, user_id, print_ = changed[device.pk]
            if self.devices is not None:
                self.devices.pop(device.mdm_id, None)  # a re-enrolled device's old id
            if device.state == Device.REMOVED:
                device.state = Device.WAITING
                device.removed_at = None
                restored.append(device.pk)
                run.added += 1
            elif device.group_id != group_id:
                moves.append((device.pk, device.group_id, group_id))
                run.moved += 1
            else:
                run.updated += 1
            for name, value in device_values(record, group_id, user_id, None, print_, now).items():
                setattr(device, name, value)
            if apps_due(device.apps_checkin, record):
                due.append((device.pk, record))
            if self.devices is not None:
                self.devices[record.mdm_id] = [
                    device.pk, print_, device.state, device.group_id, device.apps_checkin,
                    device.user_id,
                ]  # fmt: skip
        Device.objects.bulk_update(devices, DEVICE_FIELDS, batch_size=BATCH_SIZE)
        return due, restored, moves

    def _reenrolled(self, batch, hashes: dict, enrolled) -> dict:
        """Old records of devices that re-enrolled under a new MDM id (same serial or UDID).

        `hashes` holds the identity hashes of the batch's devices new to this integration.
        A record whose own id is still enrolled (in this batch, or seen earlier in this
        sync) is another device that shares the serial or UDID, never the old one.
        Returns new mdm_id -> pk of the record to reuse.
        """
        if self.indexed == 0:
            return {}  # the integration held no device when this sync began: a first sync
        new = [record for record, _, _ in batch if record.mdm_id in hashes]
        serials = {hashes[r.mdm_id][0]: r for r in new if hashes[r.mdm_id][0]}
        udids = {hashes[r.mdm_id][1]: r for r in new if hashes[r.mdm_id][1]}
        if not serials and not udids:
            return {}

        # Filtered by integration here rather than in SQL: with the integration in the
        # WHERE clause, SQLite walks every device of the integration instead of the two
        # hash indexes, and a first sync of 100,000 devices turns quadratic.
        matches = Device.objects.filter(
            Q(serial_hash__in=list(serials)) | Q(udid_hash__in=list(udids))
        ).values_list("pk", "mdm_id", "serial_hash", "udid_hash", "integration_id")
        batch_ids = {record.mdm_id for record, _, _ in batch}
        found = {}
        for pk, mdm_id, serial_hash, udid_hash, integration_id in matches:
            if integration_id != self.integration.pk:
                continue
            if mdm_id in batch_ids or mdm_id in enrolled:
                continue  # the old id is itself still enrolled: two devices, not one
            record = serials.get(serial_hash) or udids.get(udid_hash)
            if record is not None and record.mdm_id not in found:
                found[record.mdm_id] = pk
        return found

    # Apps and profiles.

    def _write_inventory(self, due: list, inventory: Inventory) -> None:
        missing = [record for _, record in due if record.mdm_id not in inventory.asked]
        if missing:
            inventory.add(self.fetcher.fetch(missing))

        apps = [(pk, record) for pk, record in due if record.mdm_id in inventory.apps_asked]
        if apps:
            self._replace(apps, inventory.apps, App, DeviceApp, "app_id",
                          lambda item: item.version[:128])  # fmt: skip
            # Only now that the apps are stored: a failed fetch is tried again next sync.
            pks = [pk for pk, _ in apps]
            Device.objects.filter(pk__in=pks).update(
                apps_checkin=Coalesce(F("last_checkin"), timezone.now())
            )
            if self.devices is not None:
                for _, record in apps:
                    entry = self.devices.get(record.mdm_id)
                    if entry is not None:
                        entry[4] = record.last_checkin or timezone.now()

        ios = [(pk, record) for pk, record in due if record.mdm_id in inventory.profiles_asked]
        if ios:
            self._replace(ios, inventory.profiles, Profile, DeviceProfile, "profile_id", _managed)

    def _replace(self, due, found, model, link, link_column, extra) -> None:
        """Makes the installs of the fetched devices exactly what the MDM reported.

        A device the answer leaves out keeps what was stored: a partial answer must not
        read as "everything was uninstalled".
        """
        keyed = model is App
        listed, items = [], {}
        for pk, record in due:
            found_items = found.get(record.mdm_id)
            if found_items is None:
                continue
            keys = []
            for item in found_items:
                identifier = item.identifier[:255]
                key = (record.platform, identifier) if keyed else identifier
                items[key] = item
                keys.append((key, item))
            listed.append((pk, keys))
        if not listed:
            return
        ids = self._catalogue_ids(model, items, keyed)

        rows = []
        for pk, keys in listed:
            seen = set()
            for key, item in keys:
                target = ids.get(key)
                if target is None or target in seen:
                    continue
                seen.add(target)
                rows.append((pk, target, extra(item)))

        third = "version" if keyed else "installed_by_mdm"
        device_ids = [pk for pk, _ in listed]
        # Devices this batch created have nothing stored yet.
        held = [pk for pk in device_ids if pk not in self.created]
        with transaction.atomic():
            before = []
            if held:
                stored = link.objects.filter(device_id__in=held)
                before = list(stored.values_list("device_id", link_column))
                stored.delete()
            # Ignoring conflicts: a device "created" here may be one an ad-hoc sync of that
            # device inserted a moment before, with its installs.
            insert_rows(link, ["device_id", link_column, third], rows, ignore_conflicts=True)
            inventory_fetched.send(
                sender=model,
                integration=self.integration,
                kind="apps" if keyed else "profiles",
                device_ids=device_ids,
                before=before,
                after=rows,
            )

    def _catalogue_ids(self, model, items: dict, keyed: bool) -> dict:
        """Ids of the tenant's apps or profiles by key, creating the new ones."""
        cache_key = model.__name__
        known = {key: pk for (name, key), pk in self.catalogue.items() if name == cache_key}
        missing = [key for key in items if key not in known]
        if missing:
            identifiers = {key[1] if keyed else key for key in missing}
            create = []
            loaded = self._load_catalogue(model, identifiers, keyed)
            for key in missing:
                if key in loaded:
                    continue
                item = items[key]
                if keyed:
                    create.append(
                        App(tenant=self.tenant, platform=key[0], identifier=key[1],
                            name=item.name[:255])
                    )  # fmt: skip
                else:
                    create.append(
                        Profile(
                            tenant=self.tenant,
                            identifier=key,
                            name=item.name[:255],
                            organization=item.organization[:255],
                            managed=item.managed,
                            status=Profile.TRUSTED if item.managed else Profile.SUSPICIOUS,
                        )
                    )
            if create:
                # ignore_conflicts: another integration's sync may add the same app.
                model.objects.bulk_create(create, batch_size=BATCH_SIZE, ignore_conflicts=True)
                loaded = self._load_catalogue(model, identifiers, keyed)
            for key, pk in loaded.items():
                self.catalogue[(cache_key, key)] = pk
                known[key] = pk
        return known

    def _load_catalogue(self, model, identifiers: set, keyed: bool) -> dict:
        query = model.objects.filter(tenant=self.tenant, identifier__in=identifiers)
        if keyed:
            rows = query.values_list("platform", "identifier", "pk")
            return {(platform, ident): pk for platform, ident, pk in rows}
        return dict(query.values_list("identifier", "pk"))


def _note_user(state, user_id: int, group: ConsoleGroup) -> None:
    """A user belongs to the highest group among their devices."""
    best = state.user_best.get(user_id)
    if best is None or group.priority < best:
        state.user_best[user_id] = group.priority


def identity_hashes(record: DeviceRecord) -> tuple[str, str]:
    return crypto.identity_hash(record.serial), crypto.identity_hash(record.udid)


def as_time(value) -> datetime | None:
    """A time column read without Django's converters: SQLite's driver gives naive UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def select(model, columns: list[str], where: tuple | None = None, **scope) -> list[tuple]:
    """Rows of `columns` of `model` within `scope` (column = value), and where given, whose
    `where[0]` column is one of the values `where[1]`, asked for in chunks.

    Plain SQL, with values as the driver returns them: the sync reads many rows, and
    Django's per-value preparation of IN lists and per-row conversion cost more than the
    queries themselves.
    """
    quote = connection.ops.quote_name
    conditions = [f"{quote(name)} = %s" for name in scope]
    sql = f"SELECT {', '.join(map(quote, columns))} FROM {quote(model._meta.db_table)}"  # noqa: S608
    chunks = [None]
    if where is not None:
        values = list(where[1])
        chunks = [values[start : start + BATCH_SIZE] for start in range(0, len(values), BATCH_SIZE)]
    found = []
    with connection.cursor() as cursor:
        for chunk in chunks:
            terms = conditions + ([f"{quote(where[0])} IN ({', '.join(['%s'] * len(chunk))})"]
                                  if chunk is not None else [])  # fmt: skip
            clause = f" WHERE {' AND '.join(terms)}" if terms else ""
            cursor.execute(sql + clause, [*scope.values(), *(chunk or [])])
            found.extend(cursor.fetchall())
    return found


def device_values(record, group_id: int, user_id, hashes, print_: str, now) -> dict:
    """The columns a sync writes to a device row, by attribute name."""
    serial_hash, udid_hash = hashes or identity_hashes(record)
    return {
        "mdm_id": record.mdm_id,
        "group_id": group_id,
        "user_id": user_id,
        "platform": record.platform,
        "os_version": record.os_version,
        "model": record.model,
        "manufacturer": record.manufacturer,
        "name": record.name,
        "guid": record.guid,
        "serial_hash": serial_hash,
        "udid_hash": udid_hash,
        "last_checkin": record.last_checkin,
        "fingerprint": print_,
        "synced_at": now,
    }


def _managed(item) -> bool:
    return bool(item.managed)


def insert_rows(model, columns: list[str], rows: list[tuple], ignore_conflicts=False) -> None:
    """A plain INSERT of many rows.

    Install rows and new devices are many in a first sync, and the ORM's per-object SQL
    compilation would cost more than the MDM's answers take to fetch. SQLite runs in this
    process, so one prepared statement over every row is cheapest there; PostgreSQL takes
    the rows as one COPY. A conflict is rare (another sync or an ad-hoc sync of the same
    device a moment before): when `ignore_conflicts` allows it, a COPY that meets one is
    rolled back to its savepoint and the rows go in with ON CONFLICT DO NOTHING.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        import psycopg

        try:
            with transaction.atomic():
                _copy_rows(model, columns, rows)
            return
        # The COPY goes through the driver's cursor, so a conflict is the driver's error.
        except (IntegrityError, psycopg.IntegrityError):
            if not ignore_conflicts:
                raise
    quote = connection.ops.quote_name
    names = ", ".join(map(quote, columns))
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 2000):
            cursor.executemany(sql, rows[start : start + 2000])


def _copy_rows(model, columns: list[str], rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    names = ", ".join(map(quote, columns))
    with connection.cursor() as cursor:
        # The driver's own cursor: Django's wrapper has no COPY.
        with cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def insert_dicts(model, rows: list[dict], ignore_conflicts: bool = False) -> None:
    """Inserts rows given as {attribute name: value} without building model instances.

    A field a row leaves out gets its default; automatic times get the moment of the call.
    Text, number, boolean and key values go to the driver as they are, times through the
    backend's own adaptation, anything else through Django's full conversion.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    plain = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)
    adapt_time = connection.ops.adapt_datetimefield_value
    now = adapt_time(timezone.now())
    prepare = []
    for f in fields:
        name, default = f.attname, f.get_default()
        if isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add):
            prepare.append(lambda row, now=now: now)
        elif isinstance(f, plain) or f.is_relation:
            prepare.append(lambda row, name=name, default=default: row.get(name, default))
        elif type(f) is models.DateTimeField:
            prepare.append(
                lambda row, name=name, default=default: adapt_time(row.get(name, default))
            )
        else:
            prepare.append(
                lambda row, f=f, name=name, default=default: f.get_db_prep_save(
                    row.get(name, default), connection
                )
            )
    values = [tuple(get(row) for get in prepare) for row in rows]
    insert_rows(model, [f.column for f in fields], values, ignore_conflicts)
