"""Batch manifest parsing and validation, fixation CSVs, output names (no Dask, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_hotspot.batch.manifest import ManifestError, missing_files, read_manifest
from napari_hotspot.batch.worker import read_fixations
from napari_hotspot.errors import HotspotError, PromptError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_valid_manifest_resolves_relative_paths_and_parses_prompts(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = write(
        tmp_path / "sub" / "jobs.csv",
        "source,prompt,frame,value\n"
        "videos/a.mp4,mask,3,masks/a.png\n"
        'videos/b.mp4,click,0,"10.5,20"\n'
        'frames/c,box,2,"1,2,30,40"\n'
        "\n"
        "# a comment row,,,\n"
        "/abs/d.mp4,auto,,\n"
        "e.mp4,GAZE,1,fix/e.csv\n",
    )
    items = read_manifest(manifest)
    assert [i.prompt for i in items] == ["mask", "click", "box", "auto", "gaze"]
    assert [i.line for i in items] == [2, 3, 4, 7, 8]
    a, b, c, d, e = items
    assert a.source_path == tmp_path / "sub" / "videos" / "a.mp4"
    assert a.value_path == tmp_path / "sub" / "masks" / "a.png" and a.frame == 3
    assert b.point == (10.5, 20.0) and b.value_path is None
    assert c.box == (1.0, 2.0, 30.0, 40.0) and c.frame == 2
    assert d.source_path == Path("/abs/d.mp4") and d.frame == 0
    assert e.value_path == tmp_path / "sub" / "fix" / "e.csv"
    assert [i.name for i in items] == ["a", "b", "c", "d", "e"]
    assert len({i.fingerprint for i in items}) == 5


def test_the_optional_absent_column_lists_frames_where_the_object_is_not(tmp_path):
    manifest = write(tmp_path / "m.csv", "source,prompt,frame,value,absent\n"
                                         "a.mp4,auto,0,,12;40\n"
                                         "b.mp4,auto,0,, 7 ; 3;7 \n"
                                         "c.mp4,auto,0,,\n")
    a, b, c = read_manifest(manifest)
    assert a.absent == (12, 40) and b.absent == (3, 7) and c.absent == ()
    assert a.describe()["absent"] == [12, 40]
    # without absences a row keeps the fingerprint it had before the column existed
    plain = read_manifest(write(tmp_path / "p.csv", "source,prompt,frame,value\nc.mp4,auto,0,\na.mp4,auto,0,\n"))
    assert plain[0].fingerprint == c.fingerprint and plain[1].fingerprint != a.fingerprint
    bad = write(tmp_path / "bad.csv", "source,prompt,frame,value,absent\n"
                                      "a.mp4,auto,3,,x\n"
                                      "b.mp4,auto,3,,-1\n"
                                      "c.mp4,auto,3,,3\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(bad)
    text = str(info.value)
    assert "line 2: absent 'x' is not a frame index" in text
    assert "line 3: absent '-1' is not a frame index" in text
    assert "line 4: absent frame 3 is the prompt's frame" in text


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    manifest = write(
        tmp_path / "m.csv",
        "source,prompt,frame,value\n"
        "a.mp4,lasso,0,\n"  # 2: unknown prompt
        "b.mp4,click,0,10\n"  # 3: one number
        'c.mp4,box,0,"5,5,5,9"\n'  # 4: zero width
        "d.mp4,auto,0,x.png\n"  # 5: auto with a value
        "e.mp4,mask,-1,\n"  # 6: negative frame and no mask path
        "f.mp4,click,0,10,20\n"  # 7: unquoted x,y -> too many fields
        ",auto,0,\n"  # 8: no source
        "g.mp4,auto,0,\n"
        "g.mp4,auto,1,\n",  # 10: duplicate of line 9
    )
    with pytest.raises(ManifestError) as info:
        read_manifest(manifest)
    text = str(info.value)
    assert isinstance(info.value, HotspotError)
    for expected in (
        "line 2: prompt 'lasso' is not one of mask, click, box, auto, gaze",
        "line 3: click value '10' is not",
        "line 4: box 5,5,5,9 has zero area",
        "line 5: prompt auto takes no value",
        "line 6: frame '-1' is not a frame index",
        "line 6: prompt mask needs the path of a mask PNG",
        "line 7: more than 4 fields",
        "line 8: source is empty",
        "line 10: video g.mp4 is already listed on line 9",
    ):
        assert expected in text, expected
    assert "9 problem(s)" in text


@pytest.mark.parametrize(
    "content, message",
    [
        ("video,prompt,frame,value\na.mp4,auto,0,\n", "missing column(s) source"),
        ("source,prompt,frame,value,extra\na.mp4,auto,0,,\n", "unknown column(s) 'extra'"),
        ("source,prompt,frame,value\n", "lists no videos"),
        ("", "missing column(s) source, prompt, frame, value"),
    ],
)
def test_bad_header_or_empty_manifest(tmp_path, content, message):
    with pytest.raises(ManifestError, match=None) as info:
        read_manifest(write(tmp_path / "m.csv", content))
    assert message in str(info.value)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


def test_colliding_names_get_a_stable_path_hash(tmp_path):
    manifest = write(tmp_path / "m.csv", "source,prompt,frame,value\nx/clip.mp4,auto,0,\ny/clip.mp4,auto,0,\nz.mp4,auto,0,\n")
    first = [i.name for i in read_manifest(manifest)]
    assert first[0].startswith("clip-") and first[1].startswith("clip-") and first[0] != first[1]
    assert first[2] == "z"
    assert [i.name for i in read_manifest(manifest)] == first


def test_missing_files_are_warned_about_not_fatal(tmp_path):
    (tmp_path / "there.mp4").write_bytes(b"")
    manifest = write(tmp_path / "m.csv", "source,prompt,frame,value\nthere.mp4,mask,0,gone.png\nmissing.mp4,auto,0,\n")
    notes = missing_files(read_manifest(manifest))
    assert any("line 2: mask PNG" in n and "gone.png" in n for n in notes)
    assert any("line 3: video" in n and "missing.mp4" in n for n in notes)


def test_fixation_csv_by_frame_or_t(tmp_path):
    by_frame = write(tmp_path / "f.csv", "frame,x,y\n0,1,2\n3,10,20\n3,11,21\n")
    assert read_fixations(by_frame, 3, (100, 100)) == [(10.0, 20.0), (11.0, 21.0)]
    by_t = write(tmp_path / "t.csv", "t,x,y\n2,5,6\n")
    assert read_fixations(by_t, 2, (100, 100)) == [(5.0, 6.0)]
    with pytest.raises(PromptError, match="no fixation on frame 1"):
        read_fixations(by_t, 1, (100, 100))
    # one reader for every gaze prompt file (io_fixations.read_frame_fixations, as the dock's): a time
    # column counts frames, a file without a header is frame,x,y
    assert read_fixations(write(tmp_path / "time.csv", "time,x,y\n0,1,1\n"), 0, (100, 100)) == [(1.0, 1.0)]
    assert read_fixations(write(tmp_path / "bare.csv", "4,7,8\n"), 4, (100, 100)) == [(7.0, 8.0)]
    with pytest.raises(PromptError, match="no x/y columns"):
        read_fixations(write(tmp_path / "bad.csv", "frame,u,v\n0,1,1\n"), 0, (100, 100))
    with pytest.raises(PromptError, match="line 2"):
        read_fixations(write(tmp_path / "nan.csv", "frame,x,y\n0,abc,1\n"), 0, (100, 100))
    with pytest.raises(PromptError, match="does not exist"):
        read_fixations(tmp_path / "none.csv", 0, (100, 100))
