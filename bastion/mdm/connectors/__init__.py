"""MDM connectors: one module per product behind the interface in `base`."""

from bastion.mdm.connectors.base import Connector
from bastion.mdm.connectors.cloud import CloudConnector
from bastion.mdm.connectors.core import CoreConnector
from bastion.mdm.connectors.http import check_url

CONNECTORS: dict[str, type[Connector]] = {
    CoreConnector.kind: CoreConnector,
    CloudConnector.kind: CloudConnector,
}


def get_connector(kind: str, url: str, username: str, password: str, **options) -> Connector:
    """A connector for `kind` ("core" or "cloud").

    Options: allow_http, ca_bundle, verify_tls, timeout, retries, backoff,
    max_retry_after, max_bytes, on_response; Cloud also lock_message. A bad URL does not
    raise here: test_connection reports it and every other call raises BadUrl.
    """
    try:
        connector_class = CONNECTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown MDM kind {kind!r}; expected one of {sorted(CONNECTORS)}"
        ) from None
    return connector_class(url, username, password, **options)


__all__ = ["CONNECTORS", "CloudConnector", "CoreConnector", "check_url", "get_connector"]
