"""Where the repository is: paths that default to files inside it resolve from here."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
