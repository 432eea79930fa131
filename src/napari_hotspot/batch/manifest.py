"""Batch manifests: the CSV (`source,prompt,frame,value`, one row per video) parsed and validated up front.

Syntax problems (header, prompt kind, numbers, a value where none belongs, a video listed twice)
stop the batch before anything runs, listed with their line numbers. Files the rows point at
(videos, mask PNGs, fixation CSVs) are only looked up when the video runs: a missing one fails
that video alone, and `missing_files` lets the command warn about them at the start.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from napari_hotspot.boxes import normalize_box
from napari_hotspot.errors import ProjectIOError, PromptError

COLUMNS = ("source", "prompt", "frame", "value")
# Optional: frames where the object is not there ("12;40"), marked absent before tracking.
OPTIONAL_COLUMNS = ("absent",)
PROMPT_KINDS = ("mask", "click", "box", "auto", "gaze")
_MAX_LISTED_ERRORS = 20
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class ManifestError(ProjectIOError):
    """The batch manifest cannot be read or has invalid rows (every problem listed with its line)."""


@dataclass(frozen=True)
class BatchItem:
    """One manifest row, validated: a video and the prompt that starts its tracking.

    `source_path` and `value_path` are absolute (relative entries resolve against the manifest's
    folder). `point` is the click (x, y), `box` the box (x0, y0, x1, y1); `name` is the video's
    output folder name under the batch output folder, unique within the manifest.
    """

    line: int
    source: str
    source_path: Path
    prompt: str
    frame: int
    value: str
    value_path: Path | None = None
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None
    name: str = ""
    absent: tuple[int, ...] = ()  # frames where the object is not there (the optional `absent` column)

    @property
    def fingerprint(self) -> str:
        """A hash of what decides this video's output (video, prompt kind, frame, prompt value)."""
        value = (
            str(self.value_path) if self.value_path is not None
            else list(self.point) if self.point is not None
            else list(self.box) if self.box is not None
            else None
        )
        fields = [str(self.source_path), self.prompt, self.frame, value]
        if self.absent:  # only then: a manifest without absences keeps the fingerprints it had
            fields.append(list(self.absent))
        text = json.dumps(fields)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def describe(self) -> dict:
        """The row as JSON-ready fields (for the completion marker and project metadata)."""
        return {
            "line": self.line,
            "source": self.source,
            "source_path": str(self.source_path),
            "prompt": self.prompt,
            "frame": self.frame,
            "value": self.value,
            "absent": list(self.absent),
            "fingerprint": self.fingerprint,
        }


def _numbers(text: str, count: int) -> tuple[float, ...] | None:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _resolve(text: str, base: Path) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else (base / path).absolute()


def _base_name(path: Path) -> str:
    stem = path.name if path.is_dir() or not path.suffix else path.stem
    name = _UNSAFE_NAME_CHARS.sub("_", stem).lstrip(".")
    return name or "video"


def _assign_names(items: list[BatchItem]) -> list[BatchItem]:
    """Folder name per video: its file/folder stem, plus a path hash where two stems collide
    (compared case-insensitively, for case-insensitive filesystems). Stable across re-runs."""
    bases = [_base_name(item.source_path) for item in items]
    counts: dict[str, int] = {}
    for base in bases:
        counts[base.lower()] = counts.get(base.lower(), 0) + 1
    named = []
    for item, base in zip(items, bases):
        if counts[base.lower()] > 1:
            digest = hashlib.sha1(str(item.source_path).encode("utf-8")).hexdigest()[:8]
            base = f"{base}-{digest}"
        named.append(replace(item, name=base))
    return named


def _parse_row(row: dict, line: int, base: Path, errors: list[str], where: str) -> BatchItem | None:
    source = (row.get("source") or "").strip()
    prompt = (row.get("prompt") or "").strip().lower()
    frame_text = (row.get("frame") or "").strip()
    value = (row.get("value") or "").strip()
    problems = []
    if not source:
        problems.append("source is empty (give a video file or frame folder)")
    if prompt not in PROMPT_KINDS:
        problems.append(f"prompt {row.get('prompt')!r} is not one of {', '.join(PROMPT_KINDS)}")
    frame, frame_ok = 0, True
    if frame_text:
        try:
            frame_float = float(frame_text)
            if not frame_float.is_integer() or frame_float < 0:
                raise ValueError
            frame = int(frame_float)
        except ValueError:
            frame_ok = False
            problems.append(f"frame {frame_text!r} is not a frame index (an integer >= 0)")
    point = box = value_path = None
    if prompt in ("mask", "gaze"):
        what = "mask PNG" if prompt == "mask" else "fixation CSV"
        if not value:
            problems.append(f"prompt {prompt} needs the path of a {what} in the value column")
        else:
            value_path = _resolve(value, base)
    elif prompt == "click":
        point = _numbers(value, 2)
        if point is None:
            problems.append(f'click value {value!r} is not "x,y" (two numbers, pixels)')
        elif min(point) < 0:
            problems.append(f"click {value!r} has a negative coordinate")
    elif prompt == "box":
        box = _numbers(value, 4)
        if box is None:
            problems.append(f'box value {value!r} is not "x0,y0,x1,y1" (four numbers, pixels)')
        else:
            try:  # the rule of every entry point: corners sorted, zero area refused
                box = normalize_box(box)
            except PromptError as err:
                problems.append(str(err))
    elif prompt == "auto" and value:
        problems.append(f"prompt auto takes no value, got {value!r}")
    absent: list[int] = []
    for part in re.split(r"[;\s]+", (row.get("absent") or "").strip()):
        if not part:
            continue
        if not (part.isascii() and part.isdigit()):
            problems.append(f"absent {part!r} is not a frame index (integers >= 0, separated by ';')")
        elif int(part) == frame and frame_ok:
            problems.append(f"absent frame {part} is the prompt's frame: the object cannot be prompted and absent there")
        else:
            absent.append(int(part))
    for problem in problems:
        errors.append(f"{where} line {line}: {problem}")
    if problems:
        return None
    return BatchItem(line, source, _resolve(source, base), prompt, frame, value, value_path, point, box,
                     absent=tuple(sorted(set(absent))))


def read_manifest(path: str | os.PathLike) -> list[BatchItem]:
    """Read and validate a batch manifest; returns one BatchItem per video, in manifest order.

    Blank rows and rows whose source starts with `#` are skipped; an empty `frame` means 0.
    Raises ManifestError listing every invalid row (line number and what is wrong).
    """
    path = Path(path)
    base = path.absolute().parent
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            unknown = [h for h in header if h not in COLUMNS + OPTIONAL_COLUMNS]
            if missing or unknown:
                detail = []
                if missing:
                    detail.append(f"missing column(s) {', '.join(missing)}")
                if unknown:
                    detail.append(f"unknown column(s) {', '.join(repr(u) for u in unknown)}")
                raise ManifestError(
                    f"{path} line 1: {'; '.join(detail)}; the header must be {','.join(COLUMNS)} "
                    f"(then, optionally, {','.join(OPTIONAL_COLUMNS)})"
                )
            reader.fieldnames = header
            errors: list[str] = []
            items: list[BatchItem] = []
            seen: dict[Path, int] = {}
            for row in reader:
                line = reader.line_num
                if None in row:
                    errors.append(f"{path} line {line}: more than {len(header)} fields "
                                  f"(quote a value that contains commas, e.g. \"10,20\")")
                    continue
                cells = [(row.get(c) or "").strip() for c in COLUMNS]
                if not any(cells) or cells[0].startswith("#"):
                    continue
                item = _parse_row(row, line, base, errors, str(path))
                if item is None:
                    continue
                if item.source_path in seen:
                    errors.append(f"{path} line {line}: video {item.source} is already listed on line "
                                  f"{seen[item.source_path]} (one row per video)")
                    continue
                seen[item.source_path] = line
                items.append(item)
    except FileNotFoundError:
        raise ManifestError(f"batch manifest {path} does not exist") from None
    except IsADirectoryError:
        raise ManifestError(f"batch manifest {path} is a folder; give the manifest CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ManifestError(f"cannot read batch manifest {path}: {err}") from None
    if errors:
        shown = errors[:_MAX_LISTED_ERRORS]
        more = len(errors) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        raise ManifestError(f"{len(errors)} problem(s) in the batch manifest:\n  " + "\n  ".join(shown) + tail)
    if not items:
        raise ManifestError(f"batch manifest {path} lists no videos (header {','.join(COLUMNS)}, then one row per video)")
    return _assign_names(items)


def missing_files(items: list[BatchItem]) -> list[str]:
    """Warnings for rows whose video, mask PNG or fixation CSV does not exist (they will fail alone)."""
    notes = []
    for item in items:
        if not item.source_path.exists():
            notes.append(f"line {item.line}: video {item.source_path} not found")
        if item.value_path is not None and not item.value_path.is_file():
            what = "mask PNG" if item.prompt == "mask" else "fixation CSV"
            notes.append(f"line {item.line}: {what} {item.value_path} not found")
    return notes
