"""Writes one batch of placed device records: users, devices, then apps and profiles.

This is the sync's hot path. Unchanged rows are recognised from a few columns read as
tuples, so a re-sync with nothing changed costs one read per batch and no write; rows
that do change are written in bulk, and install rows with a plain multi-row insert.
"""

import hashlib
import operator

from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
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
from bastion.mdm.connectors.base import DeviceRecord, Forbidden, MdmError, NotFound
from bastion.mdm.models import Integration, SyncRun

BATCH_SIZE = 500
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

# Apps are due for a device never fetched, or one that checked in since the last fetch.
APPS_DUE = ExpressionWrapper(
    Q(apps_checkin__isnull=True) | Q(apps_checkin__lt=F("last_checkin")),
    output_field=BooleanField(),
)


def fingerprint(record: DeviceRecord, group_id: int, user_id, hashes: tuple) -> str:
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
        str(user_id or ""),
        str(group_id),
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


class BatchWriter:
    def __init__(self, engine, groups: dict[str, ConsoleGroup]):
        self.engine = engine
        self.integration = engine.integration
        self.tenant = engine.tenant
        self.connector = engine.connector
        self.space = engine.space
        self.groups = groups
        self.anonymous = self.tenant.anonymous_users
        self.mask = self.integration.mask_users
        self._password_hash = self.integration.synced_password_hash
        self.apps_available = True
        self.profiles_available = self.integration.kind == Integration.CORE
        self.catalogue: dict[tuple, int] = {}

    @property
    def password_hash(self) -> str:
        """Hashed once per sync, and only when a user is created: argon2 per user would
        cost minutes on a large fleet, and a re-sync that creates nobody needs none."""
        if not self._password_hash:
            self._password_hash = make_password(self.tenant.default_synced_password())
        return self._password_hash

    def write(self, batch: list[tuple[DeviceRecord, ConsoleGroup]], run: SyncRun, state) -> None:
        with transaction.atomic():
            users = self._write_users(batch, run, state)
            due = self._write_devices(batch, users, run)
        if due:
            self._write_inventory(due, run)

    # Users.

    def _write_users(self, batch, run: SyncRun, state) -> dict[str, int]:
        """Creates and updates the batch's users; returns mdm_id -> user pk."""
        wanted, key_of_device = {}, {}
        for record, group in batch:
            if record.user is None:
                continue
            key = crypto.identity_hash(record.user.uid or record.user.email)
            if not key:
                continue
            key_of_device[record.mdm_id] = key
            wanted[key] = record.user
            best = state.user_best.get(key)
            if best is None or group.priority < best:
                state.user_best[key] = group.priority
        if not wanted:
            return {}

        rows = DeviceUser.objects.filter(tenant=self.tenant, user_key__in=list(wanted))
        existing = {row[0]: row[1:] for row in rows.values_list("user_key", "pk", *USER_FIELDS)}
        create, changed = [], {}
        for key, user in wanted.items():
            values = self._user_values(user)
            row = existing.get(key)
            if row is None:
                create.append(
                    DeviceUser(
                        tenant=self.tenant, user_key=key, password_hash=self.password_hash, **values
                    )
                )
                continue
            # Masked once any integration that brought the user in asks for it.
            values["masked"] = values["masked"] or row[-1]
            if tuple(values[name] for name in USER_FIELDS) != row[1:]:
                changed[row[0]] = values

        if create:
            fast_create(DeviceUser, create, ignore_conflicts=True)
            run.users_added += len(create)
            created = DeviceUser.objects.filter(
                tenant=self.tenant, user_key__in=[user.user_key for user in create]
            ).values_list("user_key", "pk")
            existing.update({key: (pk,) for key, pk in created})
        if changed:
            users = [DeviceUser(pk=pk, **values) for pk, values in changed.items()]
            DeviceUser.objects.bulk_update(users, USER_FIELDS, batch_size=BATCH_SIZE)

        return {
            mdm_id: existing[key][0] for mdm_id, key in key_of_device.items() if key in existing
        }

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

    def _write_devices(self, batch, users: dict[str, int], run: SyncRun) -> list:
        """Upserts the batch's devices; returns (device pk, platform, record) whose
        inventory is due."""
        ids = [record.mdm_id for record, _ in batch]
        rows = (
            Device.objects.filter(integration=self.integration, mdm_id__in=ids)
            .annotate(apps_due=APPS_DUE)
            .values_list("mdm_id", "pk", "fingerprint", "state", "group_id", "apps_due")
        )
        existing = {row[0]: row[1:] for row in rows}
        reenrolled = self._reenrolled(batch, existing)

        now = timezone.now()
        create, changed, due = [], {}, []
        restored, moves = [], []
        for record, group in batch:
            run.seen += 1
            hashes = (crypto.identity_hash(record.serial), crypto.identity_hash(record.udid))
            user_id = users.get(record.mdm_id)
            print_ = fingerprint(record, group.pk, user_id, hashes)
            row = existing.get(record.mdm_id)

            if row is None and record.mdm_id not in reenrolled:
                device = Device(
                    tenant=self.tenant,
                    integration=self.integration,
                    state=Device.WAITING,
                    created_at=now,
                )
                apply(device, record, group, user_id, hashes, print_, now)
                create.append((device, record))
                run.added += 1
                continue

            if row is None:
                pk, old_state, old_group = reenrolled[record.mdm_id]
                apps_due = True
            else:
                pk, old_print, old_state, old_group, apps_due = row
                if old_print == print_ and old_state != Device.REMOVED:
                    if apps_due:
                        due.append((pk, record))
                    continue

            if old_state == Device.REMOVED:
                restored.append(pk)
                run.added += 1
            elif old_group != group.pk:
                moves.append((pk, old_group, group.pk))
                run.moved += 1
            else:
                run.updated += 1
            changed[pk] = (record, group, user_id, hashes, print_, old_state)

        if create:
            fast_create(Device, [device for device, _ in create])
            pks = dict(
                Device.objects.filter(
                    integration=self.integration, mdm_id__in=[d.mdm_id for d, _ in create]
                ).values_list("mdm_id", "pk")
            )
            for device, _ in create:
                device.pk = pks[device.mdm_id]
        due += [(device.pk, record) for device, record in create]
        due += self._update_devices(changed, now)

        if create or restored:
            added = [device.pk for device, _ in create] + restored
            devices_added.send(sender=Device, integration=self.integration, device_ids=added)
        if moves:
            devices_moved.send(sender=Device, moves=moves)
        return due

    def _update_devices(self, changed: dict, now) -> list:
        """Writes the changed devices; returns (pk, record) of those whose apps are due."""
        if not changed:
            return []
        devices = list(Device.objects.filter(pk__in=list(changed)))
        due = []
        for device in devices:
            record, group, user_id, hashes, print_, old_state = changed[device.pk]
            if old_state == Device.REMOVED:
                device.state = Device.WAITING
                device.removed_at = None
            apply(device, record, group, user_id, hashes, print_, now)
            checkin = device.last_checkin
            if device.apps_checkin is None or (checkin and checkin > device.apps_checkin):
                due.append((device.pk, record))
        Device.objects.bulk_update(devices, DEVICE_FIELDS, batch_size=BATCH_SIZE)
        return due

    def _reenrolled(self, batch, existing: dict) -> dict:
        """Old records of devices that re-enrolled under a new MDM id (same serial or UDID).

        Returns new mdm_id -> (pk, state, group_id) of the record to reuse.
        """
        new = [record for record, _ in batch if record.mdm_id not in existing]
        serials = {crypto.identity_hash(r.serial): r for r in new if r.serial}
        udids = {crypto.identity_hash(r.udid): r for r in new if r.udid}
        if not serials and not udids:
            return {}

        # Filtered by integration here rather than in SQL: with the integration in the
        # WHERE clause, SQLite walks every device of the integration instead of the two
        # hash indexes, and a first sync of 100,000 devices turns quadratic.
        matches = Device.objects.filter(
            Q(serial_hash__in=list(serials)) | Q(udid_hash__in=list(udids))
        ).values_list(
            "pk", "mdm_id", "serial_hash", "udid_hash", "state", "group_id", "integration_id"
        )
        batch_ids = {record.mdm_id for record, _ in batch}
        found = {}
        for pk, mdm_id, serial_hash, udid_hash, state, group_id, integration_id in matches:
            if integration_id != self.integration.pk:
                continue
            if mdm_id in batch_ids:
                continue  # the old id is itself still enrolled: two devices, not one
            record = serials.get(serial_hash) or udids.get(udid_hash)
            if record is not None and record.mdm_id not in found:
                found[record.mdm_id] = (pk, state, group_id)
        return found

    # Apps and profiles.

    def _write_inventory(self, due: list, run: SyncRun) -> None:
        records = [record for _, record in due]
        apps = self._fetch(self.connector.fetch_apps, records, run, "apps")
        if apps is not None:
            self._replace(due, apps, App, DeviceApp, "app_id", lambda item: item.version[:128])
            # Only now that the apps are stored: a failed fetch is tried again next sync.
            Device.objects.filter(pk__in=[pk for pk, _ in due]).update(
                apps_checkin=Coalesce(F("last_checkin"), timezone.now())
            )

        ios = [(pk, record) for pk, record in due if record.platform == Device.IOS]
        if ios and self.profiles_available:
            profiles = self._fetch(
                self.connector.fetch_profiles, [r for _, r in ios], run, "profiles"
            )
            if profiles is not None:
                self._replace(ios, profiles, Profile, DeviceProfile, "profile_id", _managed)

    def _fetch(self, call, records: list, run: SyncRun, what: str):
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
            run.messages = run.messages + [reason]
            return None
        except MdmError as error:
            # Worth having, not worth failing the inventory for.
            setattr(self, available, False)
            run.messages = run.messages + [f"{what} not fetched: {error}"]
            return None

        if what == "profiles":
            self.integration.profiles_unavailable = ""
        return found

    def _replace(self, due, found, model, link, link_column, extra) -> None:
        """Makes the installs of the fetched devices exactly what the MDM reported.

        A device the answer leaves out keeps what was stored: a partial answer must not
        read as "everything was uninstalled".
        """
        keyed = model is App
        due = [(pk, record) for pk, record in due if record.mdm_id in found]
        if not due:
            return
        items = {}
        for _, record in due:
            for item in found.get(record.mdm_id, ()):
                key = (record.platform, item.identifier[:255]) if keyed else item.identifier[:255]
                items[key] = item
        ids = self._catalogue_ids(model, items, keyed)

        rows = []
        for pk, record in due:
            seen = set()
            for item in found.get(record.mdm_id, ()):
                key = (record.platform, item.identifier[:255]) if keyed else item.identifier[:255]
                target = ids.get(key)
                if target is None or target in seen:
                    continue
                seen.add(target)
                rows.append((pk, target, extra(item)))

        third = "version" if keyed else "installed_by_mdm"
        device_ids = [pk for pk, _ in due]
        with transaction.atomic():
            stored = link.objects.filter(device_id__in=device_ids)
            before = list(stored.values_list("device_id", link_column))
            stored.delete()
            insert_rows(link, ["device_id", link_column, third], rows)
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


def apply(device, record, group, user_id, hashes, print_, now) -> None:
    device.mdm_id = record.mdm_id
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


def _managed(item) -> bool:
    return bool(item.managed)


def insert_rows(model, columns: list[str], rows: list[tuple], ignore_conflicts=False) -> None:
    """A plain prepared INSERT run over many rows.

    Install rows and new devices are many in a first sync, and the ORM's per-object SQL
    compilation would cost more than the MDM's answers take to fetch.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 2000):
            cursor.executemany(sql, rows[start : start + 2000])


def fast_create(model, objects: list, ignore_conflicts: bool = False) -> None:
    """Inserts unsaved model instances without the ORM's per-object cost; sets no pk.

    Text, number, boolean and key columns go to the driver as they are; only the fields
    that need Django's conversion (times, JSON, auto_now) pay for it.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    plain = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)
    prepare = []
    for field in fields:
        if isinstance(field, plain) or field.is_relation:
            prepare.append(operator.attrgetter(field.attname))
        else:
            prepare.append(
                lambda instance, field=field: field.get_db_prep_save(
                    field.pre_save(instance, add=True), connection
                )
            )
    rows = [tuple(get(instance) for get in prepare) for instance in objects]
    insert_rows(model, [field.column for field in fields], rows, ignore_conflicts)
