from django.dispatch import Signal

# Sent inside the transaction that tombstones devices (they left every selected group, or
# their integration was removed), with `device_ids`. Receivers end what those devices
# were given (credentials) and settle their pending work.
device_tombstoned = Signal()

# Sent inside the sync's write transaction with `integration` and `device_ids` of devices
# the sync created or brought back. Receivers that start outside work (emails) should do
# so with transaction.on_commit.
devices_added = Signal()

# Sent inside the sync's write transaction with `moves`: a list of
# (device_id, old_group_id, new_group_id).
devices_moved = Signal()

# Sent inside the sync's write transaction once the apps or iOS profiles of some devices
# were replaced by what the MDM reported for them: `integration`, `kind` ("apps" or
# "profiles"), `device_ids`, `before` [(device_id, object_id)] and `after`
# [(device_id, object_id, version or installed_by_mdm)]. Devices the MDM's answer left out
# are not among them: their stored inventory was kept.
inventory_fetched = Signal()
