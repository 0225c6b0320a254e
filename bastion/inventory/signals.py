from django.dispatch import Signal

# Sent inside the transaction that tombstones devices (they left every selected group),
# with `device_ids`. Receivers end what those devices were given, such as credentials.
device_tombstoned = Signal()
