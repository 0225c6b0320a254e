"""A device agent simulator: speaks only Bastion's device API over HTTP.

Imports nothing from `bastion`. See README.md for the Python API and the command.
"""

from emulators.agent.client import (
    Agent,
    AgentError,
    activate,
    credential_from_activation,
    pickup,
)
from emulators.agent.fleet import Step, run_script

__all__ = [
    "Agent",
    "AgentError",
    "Step",
    "activate",
    "credential_from_activation",
    "pickup",
    "run_script",
]
