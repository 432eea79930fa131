"""DAVIS evaluation of a folder of predicted masks, and the results.csv / summary.md report files.

Layout: ground truth in ``DAVIS_ROOT/Annotations/480p/<seq>/<frame>.png`` (or the root's one resolution folder, e.g. 360p), predictions in
``PRED_DIR/<seq>/<frame>.png`` with the same frame stems. PNGs may be indexed (palette or grey labels
1..N per object) or binary 0/255 (255 = object 1). In the ground truth, a file with only the values
0 and 255 is binary (DAVIS-2016); otherwise 255 is the DAVIS void label and is treated as background,
as the official code does. Objects are the ids present in the first ground-truth frame. Each object of
each sequence is one result row. A missing prediction frame counts as an empty mask and is warned
about (the first and last frames, which DAVIS does not score, are not warned about).
"""

from __future__ import annotations

import csv
import math
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from napari_hotspot.data_paths import davis_annotations_dir
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.fileio import atomic_write
from napari_hotspot.video.masks import binary_as_object_one
from napari_hotspot.video.masks import read_label_png as _read_label_png
from napari_hotspot.evaluation.davis import (
    DEFAULT_BOUND_TH,
    boundary_f,
    evaluated_frames,
    jaccard,
    object_ids,
    scores_from_per_frame,
)

RESULT_COLUMNS = ("sequence", "object_id", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")


def read_label_png(path: Path, ground_truth: bool) -> np.ndarray:
    """Label map (uint8, 0 = background) of a mask PNG (the one reader, ``video.masks.read_label_png``),
    binary 0/255 mapped to 0/1; in multi-object ground truth 255 is DAVIS's void label (background)."""
    labels = binary_as_object_one(_read_label_png(path))
    if ground_truth and labels.max(initial=0) == 255:
        labels = labels.copy()
        labels[labels == 255] = 0  # DAVIS void label
    return labels


def list_sequences(davis_root: Path) -> list[str]:
    """Sequence names that have a ground-truth folder under ``Annotations/<resolution>``."""
    try:
        annotations = davis_annotations_dir(davis_root)
    except FileNotFoundError as exc:
        raise ProjectIOError(str(exc)) from exc
    if not annotations.is_dir():
        raise ProjectIOError(f"DAVIS annotations not found: {annotations} is not a folder (check --davis-root)")
    return sorted(p.name for p in annotations.iterdir() if p.is_dir())


def evaluate_sequence(gt_dir: Path, pred_dir: Path, bound_th: float = DEFAULT_BOUND_TH) -> list[dict]:
    """Result rows (one per object) for one sequence; see the module docstring for file conventions."""
    gt_files = sorted(Path(gt_dir).glob("*.png"))
    if not gt_files:
        raise ProjectIOError(f"no ground-truth PNGs in {gt_dir}")
    window = evaluated_frames(len(gt_files))
    first_gt = read_label_png(gt_files[0], ground_truth=True)
    ids = object_ids(first_gt)
    if not ids:
        raise AnnotationError(f"the first ground-truth frame {gt_files[0]} contains no object")
    j_values = {oid: [] for oid in ids}
    f_values = {oid: [] for oid in ids}
    missing: list[str] = []
    for gt_file in gt_files[window]:
        gt = read_label_png(gt_file, ground_truth=True)
        pred_file = Path(pred_dir) / gt_file.name
        if pred_file.exists():
            pred = read_label_png(pred_file, ground_truth=False)
            if pred.shape != gt.shape:
                raise AnnotationError(
                    f"prediction {pred_file} is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                    f"{gt.shape[1]}x{gt.shape[0]}; predictions must have the annotation resolution"
                )
            unknown = sorted(set(int(v) for v in np.unique(pred)) - {0} - set(ids))
            if unknown:
                raise AnnotationError(
                    f"prediction {pred_file} has object ids {unknown} that are not in the ground truth (ids {ids})"
                )
        else:
            missing.append(gt_file.name)
            pred = np.zeros_like(gt)
        for oid in ids:
            pred_mask, gt_mask = pred == oid, gt == oid
            j_values[oid].append(jaccard(pred_mask, gt_mask))
            f_values[oid].append(boundary_f(pred_mask, gt_mask, bound_th=bound_th))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"{Path(pred_dir)}: {len(missing)} of {len(gt_files[window])} scored prediction frames are missing "
            f"({shown}); they count as empty masks",
            stacklevel=2,
        )
    sequence = Path(gt_dir).name
    rows = []
    for oid in ids:
        row = {"sequence": sequence, "object_id": oid}
        row.update(scores_from_per_frame(j_values[oid], f_values[oid]))
        row["missing_frames"] = len(missing)
        rows.append(row)
    return rows


def evaluate_predictions(davis_root, pred_dir, sequences: Sequence[str] | None = None,
                         bound_th: float = DEFAULT_BOUND_TH) -> list[dict]:
    """DAVIS J/F rows (one per sequence and object) for the predictions in ``pred_dir``.

    With ``sequences=None`` every ground-truth sequence that has a prediction folder is scored, and the
    ground-truth sequences without one are named in a warning. Named sequences must exist on both sides.
    """
    davis_root, pred_dir = Path(davis_root), Path(pred_dir)
    if not pred_dir.is_dir():
        raise ProjectIOError(f"prediction folder not found: {pred_dir}")
    available = list_sequences(davis_root)
    if sequences is None:
        chosen = [s for s in available if (pred_dir / s).is_dir()]
        skipped = [s for s in available if s not in chosen]
        if not chosen:
            raise ProjectIOError(
                f"{pred_dir} has no sub-folder named after a DAVIS sequence of {davis_annotations_dir(davis_root)}"
            )
        if skipped:
            warnings.warn(f"no predictions for {len(skipped)} DAVIS sequences, not evaluated: {', '.join(skipped)}",
                          stacklevel=2)
    else:
        chosen = list(sequences)
        for name in chosen:
            if name not in available:
                raise ProjectIOError(f"sequence {name!r} has no ground truth in {davis_annotations_dir(davis_root)}")
            if not (pred_dir / name).is_dir():
                raise ProjectIOError(f"sequence {name!r} has no prediction folder {pred_dir / name}")
    rows: list[dict] = []
    for name in chosen:
        rows.extend(evaluate_sequence(davis_annotations_dir(davis_root, name), pred_dir / name, bound_th=bound_th))
    return rows


def _columns(rows: Iterable[dict]) -> list[str]:
    columns = list(RESULT_COLUMNS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def mean_row(rows: Sequence[dict]) -> dict:
    """Mean over rows of every numeric column (NaNs skipped); label columns read 'mean'."""
    result: dict = {"sequence": "mean", "object_id": ""}
    for column in _columns(rows):
        if column in ("sequence", "object_id"):
            continue
        values = [float(r[column]) for r in rows if column in r and _is_number(r[column])]
        finite = [v for v in values if math.isfinite(v)]
        result[column] = sum(finite) / len(finite) if finite else float("nan")
    return result


def summary_line(rows: Sequence[dict]) -> str:
    """``J_mean=0.xxx F_mean=0.xxx JF_mean=0.xxx`` over all rows (every object weighs the same)."""
    means = mean_row(rows)
    j_mean, f_mean = means["J_mean"], means["F_mean"]
    return f"J_mean={j_mean:.3f} F_mean={f_mean:.3f} JF_mean={(j_mean + f_mean) / 2:.3f}"


def _format(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as stream:
        stream.write(text)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, with_mean: bool = True) -> str:
    """Markdown table of ``rows`` (3 decimals) with a final bold mean row."""
    columns = list(columns) if columns is not None else _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c, "")) for c in columns) + " |")
    if with_mean and rows:
        means = mean_row(rows)
        cells = [f"**{_format(means.get(c, ''))}**" if means.get(c, "") != "" else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _published_section(rows: Sequence[dict]) -> str:
    """Published methods' J on the same sequences (evaluation/published.py), when there are any."""
    from napari_hotspot.evaluation.published import METHODS, comparison_rows

    table = comparison_rows(rows)
    if not table:
        return ""
    return ("\n## Published J on the same sequences\n\n"
            "STM, OSVOS, RGMP: first frame's mask; SiamMask: its box; MATNet, AGS: automatic "
            "(DAVIS benchmark raw evaluation files). The mean row covers the sequences above only.\n\n"
            + markdown_table(table, ["sequence", "J (this run)", *METHODS]))


def write_results(rows: Sequence[dict], out_dir, note: str | None = None) -> str:
    """Write ``results.csv`` and ``summary.md`` into ``out_dir`` and return the summary line.

    note: a line put at the top of summary.md (e.g. that the model saw these sequences in training)."""
    if not rows:
        raise ProjectIOError("there are no result rows to write (was any sequence evaluated?)")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectIOError(f"cannot create the output folder {out}: {exc}") from exc
    columns = _columns(rows)
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as buffer:
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: (f"{row[c]:.6f}" if isinstance(row.get(c), (float, np.floating)) else row.get(c, ""))
                             for c in columns})
        buffer.seek(0)
        csv_text = buffer.read()
    _write_atomic(out / "results.csv", csv_text)
    line = summary_line(rows)
    summary = (
        "# DAVIS evaluation\n\n"
        + (f"**{note}**\n\n" if note else "")
        + "J: region similarity (IoU); F: boundary F-measure (tolerance 0.008 of the image diagonal). "
        "Recall: fraction of frames > 0.5; decay: first minus last quarter. First and last frames excluded.\n\n"
        + markdown_table(rows, columns)
        + f"\n{line}\n"
        + _published_section(rows)
    )
    _write_atomic(out / "summary.md", summary)
    return line
