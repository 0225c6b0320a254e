"""Every secret Bastion keeps encrypted at rest, and their re-encryption with a new key.

A model field holding an encrypted value ends in "_encrypted" and is listed here, so that
`bastion rotate-secrets` re-encrypts it; a test fails on an unlisted one.
"""

from django.apps import apps
from django.db import transaction

from bastion import crypto

ENCRYPTED_FIELDS = [
    ("mdm.Integration", "password_encrypted"),
    ("activation.ActivationToken", "token_encrypted"),
]


class RotationError(Exception):
    """A stored value no configured key decrypts; the message names its model and row."""


def rotate_all() -> int:
    """Re-encrypts every stored secret with the first key; returns how many were rewritten.

    All or nothing: a value that no key opens stops the rotation before anything is saved,
    so the old key is still needed and nothing is half-migrated.
    """
    count = 0
    with transaction.atomic():
        for label, field in ENCRYPTED_FIELDS:
            model = apps.get_model(label)
            rows = model.objects.select_for_update().only("pk", field).order_by("pk")
            for row in rows:
                try:
                    rotated = crypto.rotate(getattr(row, field))
                except ValueError:
                    raise RotationError(
                        f"{label} {row.pk}: no key in BASTION_ENCRYPTION_KEYS decrypts {field}"
                    ) from None
                model.objects.filter(pk=row.pk).update(**{field: rotated})
                count += 1
    return count
