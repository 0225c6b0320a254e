"""Settings from the environment, through small typed helpers that fail loudly.

Every setting Bastion reads is named here once. A bad value stops start-up with a
message that names the variable, instead of surfacing later as a confusing error.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet


class ConfigError(Exception):
    """A setting has a value Bastion cannot use; the message names the variable."""


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default

    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    value = env_str(name)
    if value is None:
        return default

    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str) -> list[str]:
    value = env_str(name)
    if value is None:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, schemes: set[str]) -> str:
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        allowed = ", ".join(sorted(schemes))
        raise ConfigError(f"{name} must be an absolute URL ({allowed}), not {value!r}")
    return value.rstrip("/")


def data_dir() -> Path:
    """The embedded mode's folder: SQLite database, broker queue, mail, generated secrets."""
    path = Path(env_str("BASTION_DATA_DIR", str(Path.cwd() / "data"))).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def generated_secret(folder: Path, filename: str, make) -> str:
    """Reads a secret kept in the data folder, creating it on first run.

    Only the embedded mode relies on this; distributed deployments set the variables.
    """
    path = folder / filename
    if path.exists():
        return path.read_text().strip()

    value = make()
    # Create with 0600 from the start so the secret is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def encryption_keys(folder: Path) -> list[str]:
    """Fernet keys, newest first: the first encrypts, all of them decrypt (key rotation)."""
    keys = env_list("BASTION_ENCRYPTION_KEYS")
    if not keys:
        keys = [generated_secret(folder, "encryption.key", lambda: Fernet.generate_key().decode())]

    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"BASTION_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def secret_key(folder: Path) -> str:
    value = env_str("BASTION_SECRET_KEY")
    if value is None:
        return generated_secret(folder, "secret.key", lambda: secrets.token_urlsafe(50))
    if len(value) < 32:
        raise ConfigError("BASTION_SECRET_KEY must be at least 32 characters long")
    return value
