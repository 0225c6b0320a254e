"""Start-up fails loudly, naming the setting, when the environment holds a bad value."""

import os
import subprocess
import sys

import pytest

from bastion.config import ConfigError, env_bool, env_int, env_url


def start_with(tmp_path, **env):
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("BASTION_")
    }
    environment.update(BASTION_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-m", "bastion.cli", "tenant", "list"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BASTION_DATABASE_URL", "mysql://root@localhost/bastion"),
        ("BASTION_BROKER_URL", "kafka://localhost"),
        ("BASTION_PUBLIC_URL", "bastion.example.com"),
        ("BASTION_ENCRYPTION_KEYS", "not-a-key"),
        ("BASTION_SECRET_KEY", "short"),
        ("BASTION_MDM_TIMEOUT", "soon"),
        ("BASTION_ALLOW_HTTP_MDM", "maybe"),
        ("BASTION_EMAIL_URL", "pop3://mail.example.com"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    result = start_with(tmp_path, **{variable: value})

    assert result.returncode != 0
    assert variable in result.stderr


def test_the_embedded_default_starts_and_keeps_its_generated_secrets(tmp_path):
    first = start_with(tmp_path)
    key = (tmp_path / "encryption.key").read_text()
    second = start_with(tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "encryption.key").read_text() == key
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_typed_helpers_read_good_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    monkeypatch.setenv("X_NUMBER", "42")
    monkeypatch.setenv("X_URL", "https://bastion.example.com/")

    assert env_bool("X_FLAG", False) is True
    assert env_int("X_NUMBER", 1, minimum=5) == 42
    assert env_url("X_URL", "http://x", {"https"}) == "https://bastion.example.com"


def test_a_number_below_its_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("X_NUMBER", "2")

    with pytest.raises(ConfigError, match="X_NUMBER must be at least 5"):
        env_int("X_NUMBER", 10, minimum=5)
