"""What every benchmark does with its result: one JSON file that bench/report.py reads, and
one line saying where it went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console


def write_result(result: dict[str, Any], out: Path, quiet: bool = False) -> Path:
    """Write ``result`` to ``out``; ``quiet`` for a partial result saved as it grows (a run
    cut short still leaves what it measured), whose line would only repeat."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if not quiet:
        Console(soft_wrap=True).print(f"wrote {out}", highlight=False)
    return out
