"""Every notebook kernel started under pytest (nbval's and ours) runs with the network blocked, so
a notebook that would download anything fails its test instead of passing on a lucky machine."""

import os
from pathlib import Path

NONET = str(Path(__file__).parent / "tests" / "nonet")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (NONET, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
