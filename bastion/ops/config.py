"""Operations settings, read before Django or prometheus_client load anything."""

import os
from pathlib import Path

from bastion.config import ConfigError, env_str

LOG_FORMATS = {"plain", "json"}


def log_format() -> str:
    value = (env_str("BASTION_LOG_FORMAT", "plain") or "plain").lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"BASTION_LOG_FORMAT must be one of {sorted(LOG_FORMATS)}")
    return value


def metrics_dir(data_dir: Path) -> Path:
    """The folder where this host's processes keep their metrics; prometheus_client reads
    PROMETHEUS_MULTIPROC_DIR when it is first imported, so it is set here, early."""
    folder = Path(env_str("BASTION_METRICS_DIR") or data_dir / "metrics")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"BASTION_METRICS_DIR can't be created: {error}") from None
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder))
    return folder
