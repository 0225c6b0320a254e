"""A device agent simulator: speaks only Bastion's device API over HTTP.

Imports nothing from `bastion`. See README.md for the Python API and the command.
"""

from emulators.agent.client import Agent, AgentError, credential_from_activation
from emulators.agent.fleet import Step, run_script

__all__ = ["Agent", "AgentError", "Step", "credential_from_activation", "run_script"]
