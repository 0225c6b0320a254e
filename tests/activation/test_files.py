import plistlib
from xml.etree import ElementTree

from django.core import signing

from bastion.activation import files, services, tokens
from bastion.activation.models import ActivationToken

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
    '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    '<plist version="1.0">\n<dict>\n'
)
FOOTER = "</dict>\n</plist>\n"


def _plist(pairs) -> bytes:
    body = "".join(f"\t<key>{key}</key>\n\t<string>{value}</string>\n" for key, value in pairs)
    return (HEADER + body + FOOTER).encode()


def test_core_current_plist_names_the_device_by_its_uuid(core_integration, settings):
    settings.BASTION_PUBLIC_URL = "https://mtd.acme.example"
    tenant_id = core_integration.tenant.tenant_id

    rendered = files.render(core_integration, "plist-current")

    assert rendered.content == _plist(
        [
            ("uuid", "$DEVICE_UUID$"),
            ("tenantid", tenant_id),
            ("defaultchannel", "https://mtd.acme.example"),
        ]
    )
    assert plistlib.loads(rendered.content)["uuid"] == "$DEVICE_UUID$"
    assert rendered.content_type == "application/x-plist"
    assert rendered.filename == "core-eu-current.plist"


def test_core_legacy_plist_adds_hardware_ids_and_the_ad_hoc_sync_keys(core_integration, settings):
    settings.BASTION_PUBLIC_URL = "https://mtd.acme.example"
    tenant_id = core_integration.tenant.tenant_id

    rendered = files.render(core_integration, "plist-legacy")

    assert rendered.content == _plist(
        [
            ("serial", "$DEVICE_SN$"),
            ("uuid", "$DEVICE_UUID$"),
            ("imei", "$DEVICE_IMEI$"),
            ("wifimac", "$DEVICE_MAC$"),
            ("tenantid", tenant_id),
            ("defaultchannel", "https://mtd.acme.example"),
        ]
    )
    assert list(plistlib.loads(rendered.content)) == [
        "serial",
        "uuid",
        "imei",
        "wifimac",
        "tenantid",
        "defaultchannel",
    ]


def test_cloud_plists_use_clouds_variables(cloud_integration, settings):
    settings.BASTION_PUBLIC_URL = "https://mtd.acme.example"
    tenant_id = cloud_integration.tenant.tenant_id

    current = files.render(cloud_integration, "plist-current").content
    legacy = files.render(cloud_integration, "plist-legacy").content

    assert current == _plist(
        [
            ("uuid", "${devicePK}"),
            ("tenantid", tenant_id),
            ("defaultchannel", "https://mtd.acme.example"),
        ]
    )
    assert plistlib.loads(legacy) == {
        "serial": "${deviceSN}",
        "imei": "${deviceIMEI}",
        "uuid": "${deviceUDID}",
        "tenantid": tenant_id,
        "defaultchannel": "https://mtd.acme.example",
    }


def test_cloud_config_is_also_a_table_to_type_into_its_console(cloud_integration, settings):
    settings.BASTION_PUBLIC_URL = "https://mtd.acme.example"

    rows = services.config_table(cloud_integration, "current")

    assert rows == [
        {"key": "uuid", "type": "String", "value": "${devicePK}"},
        {"key": "tenantid", "type": "String", "value": cloud_integration.tenant.tenant_id},
        {"key": "defaultchannel", "type": "String", "value": "https://mtd.acme.example"},
    ]


def test_android_xml_carries_the_code_with_no_trailing_line_break(core_integration):
    code = tokens.current(core_integration, ActivationToken.CODE).token

    rendered = files.render(core_integration, "android-xml")

    expected = (
        '<?xml version="1.0" encoding="UTF-8"?><zimperium><token>' + code + "</token></zimperium>"
    )
    assert rendered.content == expected.encode()
    assert not rendered.content.endswith((b"\n", b"\r"))
    # Our own bytes, parsed to prove they are well formed.
    assert ElementTree.fromstring(rendered.content).find("token").text == code  # noqa: S314
    assert rendered.secret


def test_the_code_is_a_signed_token_that_leads_an_agent_to_bastion(core_integration, settings):
    settings.BASTION_PUBLIC_URL = "https://mtd.acme.example"

    code = tokens.current(core_integration, ActivationToken.CODE)
    payload = signing.loads(code.token, salt=tokens.CODE_SALT)

    assert payload == {
        "u": "https://mtd.acme.example",
        "t": core_integration.tenant.tenant_id,
        "i": core_integration.pk,
        "k": code.key_id,
    }
    assert code.token not in code.token_encrypted


def test_email_snippet_appends_each_mdms_device_variable(core_integration, cloud_integration):
    core_link = tokens.current(core_integration, ActivationToken.LINK).token
    cloud_link = tokens.current(cloud_integration, ActivationToken.LINK).token

    core_html = files.render(core_integration, "email-snippet").content.decode()
    cloud_html = files.render(cloud_integration, "email-snippet").content.decode()

    assert f"/activate?token={core_link}&amp;MDM_ID=$DEVICE_UUID$" in core_html
    assert f"/activate?token={cloud_link}&amp;MDM_ID=${{devicePK}}" in cloud_html
    assert files.render(core_integration, "email-snippet").content_type.startswith("text/html")


def test_the_agent_bundle_id_is_a_setting(core_integration, settings):
    assert files.bundle_id() == files.DEFAULT_BUNDLE_ID

    settings.BASTION_AGENT_BUNDLE_ID = "com.acme.mtd"

    assert services.summary(core_integration)["bundle_id"] == "com.acme.mtd"
