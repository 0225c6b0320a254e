"""scripts/audit-dependencies: fails on a known vulnerability, says so and passes when the
advisory source can't be reached. pip-audit is replaced by a stand-in that answers as the
real one does, so the script's decisions are tested without the network."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STAND_IN = """
import json, sys
args = sys.argv[1:]
output = args[args.index("--output") + 1]
answer = json.loads({answer!r})
if answer.get("stderr"):
    sys.stderr.write(answer["stderr"])
if "dependencies" in answer:
    json.dump({{"dependencies": answer["dependencies"]}}, open(output, "w"))
sys.exit(answer.get("status", 0))
"""


def run_audit(tmp_path, answer: dict):
    package = tmp_path / "pip_audit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(STAND_IN.format(answer=json.dumps(answer)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHON": sys.executable}

    return subprocess.run(
        [str(ROOT / "scripts" / "audit-dependencies")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_known_vulnerability_fails_the_audit(tmp_path):
    vulnerable = {"name": "django", "version": "5.2.0", "vulns": [
        {"id": "GHSA-test-0001", "fix_versions": ["5.2.1"], "aliases": []}]}  # fmt: skip

    result = run_audit(
        tmp_path,
        {"status": 1, "dependencies": [vulnerable, {"name": "x", "version": "1", "vulns": []}]},
    )

    assert result.returncode == 1
    assert "django 5.2.0: GHSA-test-0001 (fixed in 5.2.1)" in result.stdout


def test_a_clean_environment_passes(tmp_path):
    result = run_audit(tmp_path, {"dependencies": [{"name": "x", "version": "1", "vulns": []}]})

    assert result.returncode == 0
    assert "no known vulnerability in 1 package(s)" in result.stdout


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 1, "stderr": "requests.exceptions.ConnectionError: Max retries exceeded"},
        {"dependencies": [{"name": "x", "skip_reason": "Dependency not found on PyPI"}]},
    ],
)
def test_an_unreachable_advisory_source_is_reported_and_does_not_fail(tmp_path, answer):
    result = run_audit(tmp_path, answer)

    assert result.returncode == 0
    assert "advisory source can't be reached" in result.stdout


def test_any_other_pip_audit_failure_fails_the_audit(tmp_path):
    result = run_audit(tmp_path, {"status": 1, "stderr": "error: invalid requirement"})

    assert result.returncode == 2
