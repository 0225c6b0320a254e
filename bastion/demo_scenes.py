"""The demo's scenes: agents activate every way there is, then a threat comes and goes.

Everything here goes through the real paths: the agents speak the device API over HTTP
to the web server, a worker delivers the MDM actions, and the emulated MDMs are asked
what they now hold.
"""

import time

import click
import httpx

from emulators.agent import Agent, activate, pickup

THREAT = "arp_mitm"
CORE_TARGET = "MTD-Quarantine"
CLOUD_TARGET = "MTD Threat Detected"


def play(tenant, core, cloud, emulator, base_url: str) -> None:
    agents = activation_scenes(tenant, core, cloud, emulator, base_url)
    threat_scene(agents, core, cloud, emulator)


def activation_scenes(tenant, core, cloud, emulator, base_url: str) -> dict:
    from bastion.activation import services
    from bastion.activation.engine import decide
    from bastion.inventory.models import Device

    click.secho("\nActivation", bold=True)
    waiting = Device.objects.filter(state=Device.WAITING).order_by("pk")
    core_a, core_b = waiting.filter(integration=core)[:2]
    cloud_a = waiting.filter(integration=cloud, platform=Device.IOS).first()

    link = services.show_link(core, "demo")["token"]
    status, answer = activate(base_url, {"token": link, "mdm_id": core_a.mdm_id})
    say(f"Core device {core_a.mdm_id[:8]}… activated through the activation link", status)
    agents = {"core": Agent.from_activation(base_url, answer)}

    config = {
        "MDMDeviceID": cloud_a.mdm_id,
        "tenantid": tenant.tenant_id,
        "defaultchannel": base_url,
    }
    status, answer = activate(base_url, config)
    say(f"Cloud device {cloud_a.mdm_id} activated through the managed app config", status)
    agents["cloud"] = Agent.from_activation(base_url, answer)

    shown = services.show_code(core, "demo")
    if shown["stale"]:
        # An earlier demo ran at another address (--once picks a free port).
        shown = services.rotate_code(core, "demo")
    code = shown["code"]
    status, _ = activate(base_url, {"activation_code": code, "mdm_id": core_b.mdm_id})
    say(f"Core device {core_b.mdm_id[:8]}… activated through the MTD activation code", status)

    newcomer = enrol_new_core_device(emulator, "Sales")
    status, _ = activate(base_url, {"token": link, "mdm_id": newcomer})
    known = Device.objects.filter(integration=core, mdm_id=newcomer).first()
    group = known.group.name if known else "nowhere"
    say(f"Unknown device {newcomer[:8]}… found by an ad-hoc sync, placed in {group}", status)

    status, held = activate(base_url, {"token": link, "mdm_id": core_a.mdm_id})
    say("Re-activation of an active device through the shared link waits for approval", status)
    decide(tenant, held["request_id"], approve=True, actor="demo")
    status, answer = pickup(base_url, held["request_id"], held["pickup_token"])
    say("An administrator approved it; the agent collected its new credential", status)
    agents["core"] = Agent.from_activation(base_url, answer)
    return agents


def enrol_new_core_device(emulator, label_name: str) -> str:
    """A phone enrols in the MDM after the last sync, straight into a selected label."""
    import uuid

    core = emulator.core
    template = next(d for d in emulator.fleet.core.devices if d.status == "ACTIVE")
    device = template.copy()
    with core.lock:
        device.id = core.next_device_id
        core.next_device_id += 1
        device.uuid = str(uuid.uuid4())
        device.serial = f"DEMO{device.id:08d}"
        device.udid = f"00008110-DEMO{device.id:012d}"
        core.add_device(device)
        label = next(lb for lb in emulator.fleet.core.labels if lb.name == label_name)
        label.members.add(device.id)
        core.touch_label(label.id)
    return device.uuid


def threat_scene(agents: dict, core, cloud, emulator) -> None:
    from bastion.inventory.models import Device
    from bastion.mdm.models import ActionTarget
    from bastion.threats.matrix import deploy, matrix_for, set_row

    click.secho(f"\nThreat: MITM - ARP ({THREAT})", bold=True)
    core_device = Device.objects.get(integration=core, mdm_id=agents_mdm_id(agents["core"]))
    cloud_device = Device.objects.get(integration=cloud, mdm_id=agents_mdm_id(agents["cloud"]))
    for device, target_name in ((core_device, CORE_TARGET), (cloud_device, CLOUD_TARGET)):
        target = ActionTarget.objects.get(integration=device.integration, name=target_name)
        matrix = matrix_for(device.group)
        set_row(matrix, THREAT, {"mdm_action": target.pk, "mitigation": "remove"})
        deploy(matrix, "demo")
    say(f"Matrix deployed: {CORE_TARGET!r} label on Core, {CLOUD_TARGET!r} group on Cloud", 200)

    for agent in agents.values():
        agent.fetch_matrix()
        agent.report(THREAT, event_id="demo-arp-1", details={"ssid": "Airport WiFi"})
    say("Both agents reported the threat", 200)

    core_url = f"{emulator.url}/_emulator/state/core/devices/{core_device.mdm_id}"
    cloud_url = f"{emulator.url}/_emulator/state/cloud/devices/{cloud_device.mdm_id}"
    wait_until(lambda: has(core_url, "labels", CORE_TARGET), f"Core applied {CORE_TARGET!r}")
    wait_until(
        lambda: has(cloud_url, "groups", CLOUD_TARGET), f"Cloud moved it to {CLOUD_TARGET!r}"
    )

    for agent in agents.values():
        agent.mitigate("demo-arp-1")
    say("Both agents reported the threat mitigated", 200)
    wait_until(lambda: not has(core_url, "labels", CORE_TARGET), "Core removed the label")
    wait_until(lambda: not has(cloud_url, "groups", CLOUD_TARGET), "Cloud left the group")


def agents_mdm_id(agent: Agent) -> str:
    from bastion.api.models import DeviceCredential

    credential = DeviceCredential.authenticate(agent.credential)
    return credential.device.mdm_id


def has(url: str, key: str, name: str) -> bool:
    state = httpx.get(url, timeout=10).json()
    return any(item.get("name") == name for item in state.get(key, []))


def wait_until(check, what: str, timeout: float = 60.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            say(f"{what} ({time.monotonic() - started:.1f} s)", 200)
            return
        time.sleep(0.2)
    raise click.ClickException(f"timed out waiting: {what}")


def say(text: str, status: int) -> None:
    mark = click.style("✓", fg="green") if status < 300 else click.style("…", fg="yellow")
    if status >= 400:
        mark = click.style("✗", fg="red")
    click.echo(f"  {mark} {text}")
