"""Fixtures: a fresh emulator per test (small fleets start in milliseconds)."""

import sys
from pathlib import Path

import httpx
import pytest

# The repository root, so `emulators` imports however pytest was launched.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emulators.mobileiron import generate_fleet, start_emulator  # noqa: E402

CORE_ADMIN = ("admin", "secret")
CLOUD_ADMIN = ("admin@acme.example", "secret")


@pytest.fixture
def fleet():
    # A high inactive share so every small fleet has RETIRED/WIPED/PENDING devices.
    return generate_fleet(80, seed=11, inactive_share=0.1, now_ms=1_764_000_000_000)


@pytest.fixture
def emulator(fleet):
    handle = start_emulator(fleet)
    yield handle
    handle.stop()


@pytest.fixture
def core(emulator):
    with httpx.Client(base_url=emulator.base_url("core"), auth=CORE_ADMIN, timeout=10) as client:
        yield client


@pytest.fixture
def cloud(emulator):
    with httpx.Client(base_url=emulator.base_url("cloud"), auth=CLOUD_ADMIN, timeout=10) as client:
        yield client


@pytest.fixture
def control(emulator):
    with httpx.Client(base_url=emulator.url + "/_emulator", timeout=10) as client:
        yield client
