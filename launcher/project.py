"""What gets uploaded: the juliafarm checkout (honouring exclude.txt), or a staged copy of the
installed renderer package when juliafarm was installed from a wheel."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import renderer

# Used only when no checkout (and so no exclude.txt) is around: the same spirit, minimal.
FALLBACK_EXCLUDES = "__pycache__/\n*.pyc\n*.mp4\n*.png\n.segments/\n"


def checkout_root() -> Path | None:
    """The repository root when the renderer runs from a checkout (editable install)."""
    root = Path(renderer.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "renderer" / "scene.py").is_file():
        return root
    return None


def upload_source(staging_parent: Path | None = None) -> tuple[Path, Path]:
    """(directory to rsync, exclude file). Never the whole site-packages."""
    root = checkout_root()
    if root is not None and (root / "exclude.txt").is_file():
        return root, root / "exclude.txt"
    stage = Path(tempfile.mkdtemp(prefix="juliafarm-upload-", dir=staging_parent))
    shutil.copytree(Path(renderer.__file__).resolve().parent, stage / "renderer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    exclude = stage / "exclude.txt"
    exclude.write_text(FALLBACK_EXCLUDES, encoding="utf-8")
    return stage, exclude
