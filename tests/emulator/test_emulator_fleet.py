"""Fleet generator and fleet file."""

import json
from collections import Counter

import httpx

from emulators.mobileiron import generate_fleet, load_fleet, save_fleet, start_emulator
from emulators.mobileiron.server import Emulator

NOW = 1_764_000_000_000


def labels_per_device(emulator: Emulator) -> Counter:
    counts: Counter = Counter()
    for label in emulator.apps["core"].labels.values():
        counts.update(label.members)
    return counts


def test_small_fleet():
    fleet = generate_fleet(10, seed=3, now_ms=NOW)
    assert len(fleet.core.devices) == len(fleet.cloud.devices) == 10
    owners = Counter(d.user.index for d in fleet.core.devices)
    assert max(owners.values()) >= 2
    emulator = Emulator(fleet)
    assert max(labels_per_device(emulator).values()) >= 3
    platforms = {d.platform for d in fleet.core.devices}
    assert platforms == {"iOS", "Android"}


def test_generator_is_deterministic():
    one = generate_fleet(50, seed=9, now_ms=NOW)
    two = generate_fleet(50, seed=9, now_ms=NOW)
    other = generate_fleet(50, seed=10, now_ms=NOW)
    assert [d.uuid for d in one.core.devices] == [d.uuid for d in two.core.devices]
    assert [d.guid for d in one.cloud.devices] == [d.guid for d in two.cloud.devices]
    assert [d.uuid for d in one.core.devices] != [d.uuid for d in other.core.devices]


def test_split_by_product():
    fleet = generate_fleet(core_devices=30, cloud_devices=5, seed=1, now_ms=NOW)
    assert (len(fleet.core.devices), len(fleet.cloud.devices)) == (30, 5)
    core_only = generate_fleet(20, products=("core",), now_ms=NOW)
    assert core_only.cloud is None
    handle = start_emulator(core_only)
    try:
        assert handle.emulator.products == ["core"]
        assert httpx.get(handle.url + "/cloud/api/v1/metadata/tenant").status_code == 404
    finally:
        handle.stop()


def test_fleet_file_round_trip(tmp_path):
    fleet = generate_fleet(40, seed=5, now_ms=NOW)
    path = tmp_path / "fleet.json"
    save_fleet(fleet, path)
    data = json.loads(path.read_text())
    assert data["format"] == "mobileiron-emulator-fleet/1"
    assert {"users", "apps", "profiles", "core", "cloud"} <= set(data)

    loaded = load_fleet(path)
    assert [vars_of(d) for d in loaded.core.devices] == [vars_of(d) for d in fleet.core.devices]
    assert [vars_of(d) for d in loaded.cloud.devices] == [vars_of(d) for d in fleet.cloud.devices]
    assert {lb.name: lb.members for lb in loaded.core.labels if lb.static} == {
        lb.name: lb.members for lb in fleet.core.labels if lb.static
    }
    assert {g.id: g.static_members for g in loaded.cloud.groups} == {
        g.id: g.static_members for g in fleet.cloud.groups
    }
    assert [a.username for a in loaded.core.accounts] == ["admin", "norole", "noapps", "gdpr"]


def test_hand_written_fleet_dict():
    fleet = load_fleet(
        {
            "users": [
                {
                    "uid": "jdoe",
                    "email": "jdoe@acme.example",
                    "firstName": "Jane",
                    "lastName": "Doe",
                }
            ],
            "core": {
                "labels": [
                    {"id": -1, "name": "All-Smartphones", "static": False, "system": True},
                    {"id": 5, "name": "Sales"},
                ],
                "devices": [
                    {"id": 1, "uuid": "u-1", "platform": "Android", "user": 0, "labels": [5]}
                ],
            },
            "cloud": {
                "groups": [{"id": 7, "name": "Threat", "definition": "CFDEVICE[T] EQ '1'"}],
                "devices": [{"id": 9, "guid": "g-9", "user": 0, "attrs": {"T": ["1"]}}],
            },
        }
    )
    emulator = Emulator(fleet)
    assert emulator.apps["core"].labels[5].members == {1}
    assert emulator.apps["core"].labels[-1].members == {1}
    assert emulator.apps["cloud"].group_members[7] == {9}
    assert [a.username for a in fleet.cloud.accounts][:2] == [
        "admin@acme.example",
        "nocps@acme.example",
    ]


def test_hundred_thousand_devices():
    fleet = generate_fleet(100_000, seed=1, now_ms=NOW)
    assert len(fleet.core.devices) == len(fleet.cloud.devices) == 100_000
    assert len({d.uuid for d in fleet.core.devices}) == 100_000
    assert len({d.serial for d in fleet.core.devices}) == 100_000

    owners = Counter(d.user.index for d in fleet.core.devices)
    assert sum(1 for n in owners.values() if n >= 2) > 10_000

    inactive = sum(1 for d in fleet.core.devices if d.status != "ACTIVE")
    assert 2_000 < inactive < 4_500
    assert 2_000 < sum(1 for d in fleet.cloud.devices if d.state != "ACTIVE") < 4_500

    models = Counter(d.model for d in fleet.core.devices)
    assert {"iPhone 15 Pro", "Pixel 8", "SM-S911B"} <= set(models)
    assert "iPhone14,2" in {d.model for d in fleet.cloud.devices}

    emulator = Emulator(fleet)
    per_device = labels_per_device(emulator)
    assert sum(1 for n in per_device.values() if n >= 3) > 50_000
    core = emulator.apps["core"]
    assert 6 <= len(core.labels) <= 12
    assert sum(1 for lb in core.labels.values() if lb.static) >= 5
    cloud = emulator.apps["cloud"]
    dynamic = [g for g in fleet.cloud.groups if g.definition and "CFDEVICE" in g.definition]
    assert len(dynamic) >= 2
    # Some devices already carry MTDThreat=1, so the threat group starts non-empty.
    threat = next(g for g in dynamic if g.name == "MTD Threat Detected")
    assert cloud.group_members[threat.id]
    assert {s.name for s in fleet.cloud.spaces} == {"Default Space", "Marketing Space"}


def vars_of(device):
    return {
        name: getattr(device, name) if name != "user" else device.user.uid
        for name in device.__slots__
    }
