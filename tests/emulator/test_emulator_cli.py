"""`python -m emulators.mobileiron serve|generate` in its own process."""

import json
import subprocess
import sys
from pathlib import Path

import httpx

from emulators.mobileiron import load_fleet

ROOT = Path(__file__).resolve().parents[2]


def serve(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.mobileiron", "serve", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    urls = json.loads(process.stdout.readline())
    return process, urls


def stop(process):
    process.terminate()
    assert process.wait(timeout=10) == 0


def test_serve_prints_its_urls_and_answers():
    process, urls = serve("--generate", "20", "--seed", "4", "--throttle-after", "1")
    try:
        assert set(urls) == {"core", "cloud", "control"}
        assert urls["core"].endswith("/core") and urls["cloud"].endswith("/cloud")
        ping = httpx.get(urls["core"] + "/api/v2/ping", auth=("admin", "secret"))
        assert ping.status_code == 200
        throttled = httpx.get(
            urls["cloud"] + "/api/v1/metadata/tenant", auth=("admin@acme.example", "secret")
        )
        assert throttled.status_code == 429
        assert httpx.get(urls["control"] + "/health").json()["devices"] == {"core": 20, "cloud": 20}
    finally:
        stop(process)


def test_generate_then_serve_one_product_at_the_root(tmp_path):
    out = tmp_path / "fleet.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulators.mobileiron",
            "generate",
            "--devices",
            "30",
            "--seed",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["core_devices"] == summary["cloud_devices"] == 30
    assert len(load_fleet(out).core.devices) == 30

    process, urls = serve("--fleet", str(out), "--product", "cloud")
    try:
        assert set(urls) == {"cloud", "control"}
        spaces = httpx.get(
            urls["cloud"] + "/api/v1/tenant/partition/device", auth=("admin@acme.example", "secret")
        )
        assert spaces.status_code == 200
        assert urls["cloud"].count("/") == 2  # served at the root, no /cloud prefix
    finally:
        stop(process)
