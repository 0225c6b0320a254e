"""The activation figures the MDM list shows: re-activations waiting for a decision."""

from bastion.activation import services


def summary(tenant) -> dict:
    return {"requests": services.pending_requests(tenant)}
