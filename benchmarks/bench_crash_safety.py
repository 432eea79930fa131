"""Kill benchmark: SIGKILL project saves and `track` output commits at random moments, count what breaks.

Three kinds of runs, each in a child process that is killed (SIGKILL: no cleanup, no `finally`):

* save: the child saves a project over and over (`annotations.project.save_project`, each save a
  different store); it is killed after a random delay, or at one of the crash points of the swap
  (`save:old`, `save:new`, `save:trash`: after the old folder is moved away, after the new one is
  moved in, after the old one is renamed for deletion).
* track-output: the child writes `track` outputs over and over through the same calls
  `pipeline.track_video` makes (`track_output.writing`, `fileio.write_png_checked` per frame,
  `track_output.write_hotspots`; the commit on leaving `writing`), alternating 10- and 7-frame outputs whose
  PNGs and CSV carry the generation; killed after a random delay or at a crash point of the commit
  (`track:record`, `track:masks-old`, `track:masks`, `track:hotspots.csv`, `track:unlinked`).
* track-cli (``--real N``): the real `napari-hotspot track` command on 8- and 6-frame sample videos,
  killed at a random moment of its run or at a commit crash point (slow: it loads the models).

After each kill the next run's first step is taken, as a reader does it (`load_project`, or
`track_output.recover_track_dir`), then the output is checked: broken = it does not load, or it is
neither the last complete output nor the one being written (for track: a PNG count, PNG content and
CSV that disagree); leftovers = any other entry beside it (hidden temporary folders or files).

    python benchmarks/bench_crash_safety.py [--saves 120] [--tracks 40] [--real 2] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAVE_POINTS = ("save:old", "save:new", "save:trash")
TRACK_POINTS = ("track:record", "track:masks-old", "track:masks", "track:hotspots.csv", "track:unlinked")
H, W = 48, 64


# ---------------------------------------------------------------------------- what the children write
def make_store(gen: int):
    """A project store that differs for every generation (masks, hotspots, object names)."""
    from napari_hotspot.annotations.model import AnnotationStore

    rng = np.random.default_rng(gen)
    store = AnnotationStore(12, H, W)
    for k in range(3):
        store.add_object(f"object {k} gen {gen}")
    for t in range(12):
        for oid in (1, 2):
            store.set_frame(oid, t, mask=rng.random((H, W)) > 0.6, hotspot=(float(t), float(gen % 40)),
                            confidence=float(rng.random()))
    return store


def track_frames(gen: int) -> int:
    return 10 if gen % 2 == 0 else 7


def write_track_output(out_dir: Path, gen: int) -> None:
    """One `track` output of generation `gen`, through the calls track_video makes."""
    from napari_hotspot import track_output
    from napari_hotspot.fileio import write_png_checked

    n = track_frames(gen)
    label = np.zeros((H, W), np.uint8)
    rows = []
    with track_output.writing(out_dir) as partial:
        for t in range(n):
            label[:] = 0
            label[t: t + 20, 10:40] = gen % 250 + 1
            write_png_checked(partial / track_output.MASKS / f"{t:05d}.png", label, fsync=True)
            rows.append([t, 1, f"{t:.2f}", "5.00", 1, "1.0000", f"gen{gen}"])
        track_output.write_hotspots(partial, rows)


def child(kind: str, target: Path, start: int) -> None:
    """Write generation after generation until killed; print each finished one."""
    from napari_hotspot.annotations.project import save_project

    print("ready", flush=True)
    gen = start
    while True:
        if kind == "save":
            save_project(make_store(gen), target, extra={"gen": gen})
        else:
            write_track_output(target, gen)
        print(gen, flush=True)
        gen += 1


# ---------------------------------------------------------------------------- checks after a kill
def check_project(path: Path, done: int, tried: int) -> tuple[bool, list[str], str, int]:
    """(broken?, leftovers, detail, generation found) after the next load."""
    import warnings

    from napari_hotspot.annotations.project import load_project

    gen = -1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store, meta = load_project(path)  # recovers first, as the next save does too
        gen = int(meta["extra"]["gen"])
        expected = make_store(gen)
        ok = gen in (done, tried) and all(
            np.array_equal(store.mask(oid, t), expected.mask(oid, t)) for oid in (1, 2) for t in range(12)) \
            and [o.name for o in store.objects] == [o.name for o in expected.objects]
        detail = "" if ok else f"loaded generation {gen}, expected {done} or {tried}"
    except Exception as err:  # noqa: BLE001 (any failure to load is a broken output)
        ok, detail = False, f"{type(err).__name__}: {err}"
    left = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    return not ok, left, detail, gen


def read_track_dir(out_dir: Path) -> tuple[int, int, str]:
    """(frames, generation or -1, problem) of a track folder after the reader's recovery."""
    import cv2

    from napari_hotspot.track_output import recover_track_dir

    recover_track_dir(out_dir)
    masks = out_dir / "masks"
    pngs = sorted(masks.glob("*.png")) if masks.is_dir() else []
    with open(out_dir / "hotspots.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    gens = set()
    for png in pngs:
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        if image is None:
            return len(pngs), -1, f"{png.name} is unreadable"
        gens.add(int(image.max()))
    sources = {r["source"] for r in rows}
    if len(pngs) != len(rows) or sorted(int(r["frame"]) for r in rows) != list(range(len(pngs))):
        return len(pngs), -1, f"{len(pngs)} PNGs but {len(rows)} CSV rows"
    return len(pngs), (gens.pop() if len(gens) == 1 else -1), ",".join(sorted(sources))


def check_track(out_dir: Path, done: int, tried: int) -> tuple[bool, list[str], str, int]:
    gen = -1
    try:
        frames, value, sources = read_track_dir(out_dir)
        found = [g for g in (done, tried) if frames == track_frames(g) and value == g % 250 + 1 and sources == f"gen{g}"]
        ok = bool(found)
        gen = found[0] if found else -1
        detail = "" if ok else f"{frames} frames, label {value}, source {sources}; expected generation {done} or {tried}"
    except Exception as err:  # noqa: BLE001
        ok, detail = False, f"{type(err).__name__}: {err}"
    left = sorted(p.name for p in out_dir.iterdir() if p.name not in ("masks", "hotspots.csv"))
    return not ok, left, detail, gen


# ---------------------------------------------------------------------------- one kill
def kill_once(kind: str, target: Path, start: int, rng: random.Random, point: str | None,
              max_delay: float, on_disk: int) -> tuple[int, int]:
    """Start a child writing generations from `start` over the output of generation `on_disk`; kill
    it; return (the last complete generation, the one it was writing): a reader must find one of them."""
    env = dict(os.environ)
    if point:
        env["NAPARI_HOTSPOT_TEST_CRASH_AT"] = point
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(target), str(start)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    if not point:
        time.sleep(rng.uniform(0.0, max_delay))
        proc.send_signal(signal.SIGKILL)
    try:
        proc.wait(timeout=60)  # a crash point kills the child itself
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)  # (code without crash points: a random kill after all)
        proc.wait()
    finished = [int(line) for line in proc.stdout.read().split()]
    if not finished:  # killed during its first write: the earlier output or its first one
        return on_disk, start
    return finished[-1], finished[-1] + 1


def run_kind(kind: str, kills: int, root: Path, rng: random.Random, max_delay: float) -> dict:
    from napari_hotspot.annotations.project import save_project

    folder = root / kind
    folder.mkdir()
    target = folder / ("proj" if kind == "save" else "out")
    points = SAVE_POINTS if kind == "save" else TRACK_POINTS
    if kind == "save":
        save_project(make_store(0), target, extra={"gen": 0})
    else:
        write_track_output(target, 0)
    check = check_project if kind == "save" else check_track
    on_disk, start, broken, leftover_runs, details = 0, 1, 0, 0, []
    t0 = time.perf_counter()
    for i in range(kills):
        point = points[i % len(points)] if i % 4 == 3 else None  # every 4th kill: at a crash point of the swap
        done, tried = kill_once(kind, target, start, rng, point, max_delay, on_disk)
        bad, left, detail, found = check(target, done, tried)
        broken += bad
        leftover_runs += bool(left)
        if bad or left:
            details.append(f"kill {i} ({point or 'random'}): {detail} {left}")
        on_disk = found if not bad else on_disk
        start = tried + 1  # generations are never reused
    return {"kind": kind, "kills": kills, "at_swap": sum(1 for i in range(kills) if i % 4 == 3),
            "broken": broken, "leftovers": leftover_runs, "seconds": time.perf_counter() - t0, "details": details}


def run_real(kills: int, root: Path, rng: random.Random, long_side: int) -> dict:
    """The real `napari-hotspot track` CLI, killed at random moments (or at a commit crash point)."""
    import cv2

    from napari_hotspot.sample_data import make_sample_video, write_sample

    folder = root / "cli"
    videos = {}
    for n in (8, 6):
        sample = make_sample_video(num_frames=n, height=120, width=160, seed=1)
        videos[n] = write_sample(folder / f"v{n}", "folder", sample).frames
        cv2.imwrite(str(folder / "mask.png"), (sample.masks[0] == 1).astype(np.uint8) * 255)
    out = folder / "out"

    def command(n):
        return [sys.executable, "-m", "napari_hotspot.cli", "track", str(videos[n]), "--out", str(out), "--mask",
                str(folder / "mask.png"), "--adapt", "0", "--complete", "0", "--long-side", str(long_side)]

    t0 = time.perf_counter()
    subprocess.run(command(8), check=True, capture_output=True)
    full = time.perf_counter() - t0
    frames, broken, leftover_runs, details = 8, 0, 0, []
    for i in range(kills):
        n = 6 if frames == 8 else 8
        point = TRACK_POINTS[(i // 2) % len(TRACK_POINTS)] if i % 2 else None
        env = dict(os.environ, **({"NAPARI_HOTSPOT_TEST_CRASH_AT": point} if point else {}))
        proc = subprocess.Popen(command(n), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if not point:
            try:
                proc.wait(timeout=rng.uniform(0.3, 1.0) * full)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            got, _value, _sources = read_track_dir(out)
            bad = got not in (frames, n)
            detail = f"{got} frames, expected {frames} or {n}"
        except Exception as err:  # noqa: BLE001
            bad, got, detail = True, -1, f"{type(err).__name__}: {err}"
        left = sorted(p.name for p in out.iterdir() if p.name not in ("masks", "hotspots.csv"))
        broken += bad
        leftover_runs += bool(left)
        if bad or left:
            details.append(f"cli kill {i} ({point or 'random'}): {detail} {left}")
        frames = got if not bad else frames
    return {"kind": "track-cli", "kills": kills, "at_swap": kills // 2, "broken": broken,
            "leftovers": leftover_runs, "seconds": time.perf_counter() - t0, "details": details}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--saves", type=int, default=120, help="kills during project saves")
    ap.add_argument("--tracks", type=int, default=40, help="kills during track output commits")
    ap.add_argument("--real", type=int, default=2, help="kills of the real `track` command (slow: models load)")
    ap.add_argument("--long-side", type=int, default=256, help="--long-side of the real track runs")
    ap.add_argument("--max-delay", type=float, default=0.4, help="random kills land within this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, deleted)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "TARGET", "START"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), int(args.child[2]))
        return 0
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="crash-bench-")) if args.out is None else args.out
    root.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        if args.saves:
            results.append(run_kind("save", args.saves, root, rng, args.max_delay))
        if args.tracks:
            results.append(run_kind("track-output", args.tracks, root, rng, args.max_delay))
        if args.real:
            results.append(run_real(args.real, root, rng, args.long_side))
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"command: python benchmarks/bench_crash_safety.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print()
    print("| runs killed | kills | of them at the swap | broken outputs | runs with leftovers after the next run | seconds |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['kind']} | {r['kills']} | {r['at_swap']} | {r['broken']} | {r['leftovers']} | {r['seconds']:.0f} |")
    for r in results:
        for line in r["details"][:10]:
            print(line)
    return 1 if any(r["broken"] or r["leftovers"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
