"""The scripted demo (napari_hotspot._napari.demo): runs napari on the sample video, clicks, tracks,
saves a screenshot and exits 0. Runs it in a subprocess, as ``napari-hotspot demo`` would, on the
display the tests run on (``xvfb-run -a``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from napari_hotspot._napari.demo import _click_point, add_arguments

pytestmark = pytest.mark.gui


def test_click_point_is_inside_the_object():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:25] = True
    mask[18:22, 25:55] = True  # a thin arm: the centroid-free deepest point stays in the body
    x, y = _click_point(mask)
    assert mask[int(y), int(x)] and 12 <= x <= 18 and 17 <= y <= 22


def test_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--screenshot", "a.png", "--quit", "--frames", "8"])
    assert str(args.screenshot) == "a.png" and args.quit and args.frames == 8 and args.frame is None
    assert args.adapt is None and parser.parse_args(["--adapt", "0"]).adapt == 0.0
    for bad in (["--long-side", "10"], ["--frames", "0"], ["--frame", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


@pytest.mark.parametrize("extra, message", [(["--frame", "99"], "outside the sample video"),
                                            (["--screenshot", "{blocker}/shot.png"], "it is a file, not a folder")])
def test_bad_arguments_are_refused_before_the_viewer_opens(tmp_path, monkeypatch, capsys, extra, message):
    import napari

    from napari_hotspot._napari.demo import main

    def no_viewer(*args, **kwargs):
        raise AssertionError("the viewer opened before the arguments were checked")

    monkeypatch.setattr(napari, "Viewer", no_viewer)
    (tmp_path / "afile").write_text("x")
    extra = [e.replace("{blocker}", str(tmp_path / "afile")) for e in extra]
    assert main(["--quit", "--frames", "8", *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")
def test_demo_screenshot_and_quit(tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "HOME": str(tmp_path)}  # nothing may land in the real home folder
    proc = subprocess.run(
        [sys.executable, "-m", "napari_hotspot._napari.demo", "--screenshot", str(shot), "--quit", "--frames", "8",
         "--adapt", "0"],  # adaptation is tested in test_widget_adaptation.py; keep this run short
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "screenshot saved" in proc.stdout
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[0] >= 600 and image.shape[1] >= 1000  # the whole window, not just the canvas
    assert image.std() > 20
    assert not (tmp_path / ".napari-hotspot").exists()  # the scripted run's autosave went to a temp dir
