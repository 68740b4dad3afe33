"""Where the tests find the project's own files."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPOS = ROOT / "topologies"
CAMPAIGNS = ROOT / "campaigns"
DATA = Path(__file__).resolve().parent / "unit" / "data"
