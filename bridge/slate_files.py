"""Where slate pictures come from: ``video.slate_directory``, or the built-in card."""

from __future__ import annotations

from pathlib import Path

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
BUILT_IN_CARD = Path(__file__).resolve().parent / "media" / "assets" / "slate.jpg"  # from slate-card.html


def list_pictures(directory: str) -> frozenset[str]:
    """The picture file names a request may name (read at start-up and on reload, never per call)."""
    if not directory:
        return frozenset()
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return frozenset()
    return frozenset(p.name for p in entries if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)


def picture_path(directory: str, name: str) -> Path:
    """The file of picture ``name`` ("" = the built-in card); names never hold a path separator."""
    if not name:
        return BUILT_IN_CARD
    return Path(directory) / Path(name).name
