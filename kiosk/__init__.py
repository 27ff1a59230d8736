"""kiosk: keeps nurses logged in, safely, across a whole shift on shared ward workstations."""

__version__ = "0.1.0.dev0"
