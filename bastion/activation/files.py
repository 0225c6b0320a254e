"""The files an administrator loads into the MDM: managed app configs, the Android XML
configuration that carries the MTD activation code, and an activation email snippet."""

import plistlib
from dataclasses import dataclass
from html import escape
from xml.sax.saxutils import escape as xml_escape

from django.conf import settings

from bastion.activation import tokens
from bastion.activation.models import ActivationToken
from bastion.mdm.models import Integration

DEFAULT_BUNDLE_ID = "org.bastion-mtd.agent"

# Keys and MDM variables per product and agent release, in the order the MDM shows them.
# Current agents name the device by the id the MDM's actions take; legacy ones also send
# hardware identifiers, which Bastion never stores.
CONFIG_VARIABLES = {
    (Integration.CORE, "current"): [("uuid", "$DEVICE_UUID$")],
    (Integration.CORE, "legacy"): [
        ("serial", "$DEVICE_SN$"),
        ("uuid", "$DEVICE_UUID$"),
        ("imei", "$DEVICE_IMEI$"),
        ("wifimac", "$DEVICE_MAC$"),
    ],
    (Integration.CLOUD, "current"): [("uuid", "${devicePK}")],
    (Integration.CLOUD, "legacy"): [
        ("serial", "${deviceSN}"),
        ("imei", "${deviceIMEI}"),
        ("uuid", "${deviceUDID}"),
    ],
}

FILES = {
    "plist-current": "Managed app config, current agents (plist)",
    "plist-legacy": "Managed app config, legacy agents (plist)",
    "android-xml": "Android XML configuration with the MTD activation code",
    "email-snippet": "Activation email snippet (HTML)",
}
SECRET_FILES = {"android-xml"}


@dataclass(frozen=True)
class File:
    content: bytes
    content_type: str
    filename: str
    # True when the file holds the MTD activation code: showing it is audited.
    secret: bool = False


def bundle_id() -> str:
    return getattr(settings, "BASTION_AGENT_BUNDLE_ID", DEFAULT_BUNDLE_ID)


def config_entries(integration: Integration, release: str) -> list[tuple[str, str]]:
    """The key/value rows of a managed app config; Cloud administrators type these in."""
    rows = list(CONFIG_VARIABLES[(integration.kind, release)])
    rows.append(("tenantid", integration.tenant.tenant_id))
    rows.append(("defaultchannel", settings.BASTION_PUBLIC_URL))
    return rows


def plist(integration: Integration, release: str) -> File:
    entries = dict(config_entries(integration, release))
    content = plistlib.dumps(entries, fmt=plistlib.FMT_XML, sort_keys=False)
    return File(content, "application/x-plist", f"{_slug(integration)}-{release}.plist")


def android_xml(integration: Integration) -> File:
    code = tokens.current(integration, ActivationToken.CODE).token
    # The MDM passes the file as is: no line break may follow the closing tag.
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<zimperium><token>{xml_escape(code)}</token></zimperium>"
    ).encode()
    return File(content, "application/xml", f"{_slug(integration)}-android.xml", secret=True)


def email_snippet(integration: Integration) -> File:
    link = tokens.fleet_link(integration, tokens.current(integration, ActivationToken.LINK))
    content = (
        "<p>Once the protection app is installed on your device, open the link below on the "
        "device to activate it.</p>\n"
        f'<p><a href="{escape(link)}">Activate protection</a></p>\n'
    ).encode()
    return File(content, "text/html; charset=utf-8", f"{_slug(integration)}-email.html")


def render(integration: Integration, name: str) -> File:
    """One downloadable file by name (see FILES); raises KeyError for an unknown name."""
    if name == "plist-current":
        return plist(integration, "current")
    if name == "plist-legacy":
        return plist(integration, "legacy")
    if name == "android-xml":
        return android_xml(integration)
    if name == "email-snippet":
        return email_snippet(integration)
    raise KeyError(name)


def _slug(integration: Integration) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in integration.name.lower())
    return "-".join(part for part in cleaned.split("-") if part) or f"mdm-{integration.pk}"
