"""An emulated MobileIron Core and MobileIron Cloud for tests and benchmarks.

Nothing here imports Bastion; the contract both sides follow is docs/mobileiron-api.md.
"""

from .faults import FaultRule
from .fleet import Fleet, generate_fleet, load_fleet, save_fleet
from .server import Emulator, EmulatorHandle, start_emulator

__all__ = [
    "Emulator",
    "EmulatorHandle",
    "FaultRule",
    "Fleet",
    "generate_fleet",
    "load_fleet",
    "save_fleet",
    "start_emulator",
]
