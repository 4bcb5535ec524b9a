"""`<output>/study.json`: where `xfer run` recorded a study's tracking URI, experiment and study file (no heavy imports)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional


def study_json(out_dir: Optional[Path]) -> dict:
    """`<out_dir>/study.json` as written by xfer.run ({} if absent): tracking_uri, experiment, study_file."""
    info = out_dir / "study.json" if out_dir is not None else None
    return json.loads(info.read_text()) if info is not None and info.exists() else {}
