"""Shared readers for the import modules: JSON documents and finite numbers, with clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

from napari_hotspot.errors import ProjectIOError


def read_json(path: Path, what: str):
    """The parsed JSON document at `path`; ProjectIOError naming `what` and the file otherwise."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectIOError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ProjectIOError(f"{path} is not valid JSON (line {err.lineno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectIOError(f"cannot read {what} {path}: {err}") from None


def parse_float(text: str | None, what: str, where: str) -> float | None:
    """A finite float from a table cell (None when blank); ProjectIOError naming `where` otherwise."""
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ProjectIOError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ProjectIOError(f"{where}: {what} is {text!r}; expected a finite number")
    return value
