"""lab task options: bad input is one line before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bad_port_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "lab.up", "--port", "22a"],
                          cwd=REPO, capture_output=True, text=True, check=False,
                          env={"STACK_LAB_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --port: expected a port 1-65535, got '22a'"
    assert not any(tmp_path.iterdir())  # nothing was created
