"""The tracking dock's project: saving and opening project folders, autosave and exports.

``ProjectMixin`` is a part of ``HotspotController``. The project files themselves are written and read
by the Qt-free ``annotations.project``; the adapted trackers saved with a project are kept by
``annotations.adapted_trackers``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari_hotspot._napari.layer_data import EXTRA_KEY, META_KEY, OUTPUT_ROLES, RESUME_KEY, ROLE_VIDEO, layer_meta
from napari_hotspot.annotations import AnnotationStore, Autosaver, save_project
from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.project import ADAPTATION_DIR, load_project_quietly
from napari_hotspot.errors import AnnotationError, HotspotError, ProjectIOError


def mask_fingerprint(packed: CompressedMask | None) -> str:
    """A short fingerprint of a stored mask: a reopened frame whose mask has another one was changed
    after the clicks made it (outside the dock, or by a newer save)."""
    import hashlib

    if packed is None:
        return ""
    return hashlib.sha1(repr(packed.bbox).encode() + packed.data).hexdigest()[:16]


class ProjectMixin:
    """Save, open, autosave and export (a part of ``HotspotController``)."""

    # ------------------------------------------------------------------ save, load, export
    def _video_record(self) -> tuple[Any, dict]:
        """(video path for the project, description for the project reader)."""
        meta = layer_meta(self.video_layer)
        source = meta.get("source")
        if source == "sample":
            return None, {"kind": "sample"}
        path = getattr(self._source, "path", None) or source
        if path and Path(str(path)).exists():
            return Path(str(path)), {"kind": "path"}
        return None, {"kind": "none"}

    def _project_extra(self) -> dict:
        _path, video = self._video_record()
        prompts = []
        for (t, oid), group in sorted(self._applied.items()):
            record = {"frame": t, "object_id": oid, **group.to_json()}
            base = self._click_bases.get((t, oid))
            if base is not None:  # the clicks correct this mask; reopened, they still do
                record["corrects"] = self._compressed_base_json((t, oid), base)
                # the mask they made, while the frame still shows it (re-propagation keeps to their kind)
                if self._prompts_that_made(t, oid) is not None:
                    record["made_mask"] = mask_fingerprint(self.store.get(oid, t).packed_mask)
            prompts.append(record)
        return {EXTRA_KEY: {"video": {**video, "name": self.video_layer.name}, "prompts": prompts,
                            "frame_names": self.frame_names,
                            "adaptation": self.adapted.records(self.session, self.store)}}

    def _compressed_base_json(self, key: tuple[int, int], base: Any) -> dict:
        """A correction base's compressed form for the project file, encoded once per base: autosave
        writes every base each time, and encoding one took about 1 ms (bases are replaced, never changed
        in place)."""
        hit = self._click_base_json.get(key)
        if hit is None or hit[0] is not base:
            hit = self._click_base_json[key] = (base, CompressedMask.from_array(base).to_json())
        return hit[1]

    def _restore_correction(self, key: tuple[int, int], record: dict) -> None:
        """A reopened project's corrective clicks: they go on correcting the mask they corrected, and
        re-propagation from their frame keeps to their kind while the frame shows the mask they made."""
        if "corrects" not in record:
            return  # clicks that picked the object, or a project saved before corrections were kept
        t, oid = key
        try:  # (its frame is inside the video: layer_data.prompt_records skipped any other)
            base = CompressedMask.from_json(record["corrects"], (self.store.height, self.store.width)).to_array()
        except (AnnotationError, MemoryError) as err:  # the clicks and masks still load: only this base is lost
            self._report(ProjectIOError(f"frame {t}: the mask its clicks corrected is unreadable ({err}); "
                                        f"further clicks there pick the object anew"), warning=True)
            return
        self._click_bases[key] = base
        entry = self.store.get(oid, t) if self.store.has_object(oid) else None
        made = record.get("made_mask")
        if entry is not None and isinstance(made, str) and made == mask_fingerprint(entry.packed_mask):
            self._prompt_history[key] = [(entry, self._applied[key], base)]

    def _adaptation_files(self) -> dict[str, bytes | Path]:
        """Each adapted object's tracker state (torch.save bytes), by its file name in the project."""
        return self.adapted.files(self.session, self.store, self.lock)

    def autosave_name(self) -> str:
        """The autosave folder name of the video: its layer name plus a key of its source path, so a frame
        folder and an mp4 of the same name (or two same-named videos in different folders) never share
        one autosave. A layer without a file keys on its name and shape."""
        import hashlib

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.video_layer.name) or "video"
        video_path, record = self._video_record()
        if video_path is not None:
            source = str(Path(video_path).resolve())
        else:
            source = f"{record.get('kind')}:{self.video_layer.name}:{self.store.shape}"
        return f"{safe}-{hashlib.sha1(source.encode('utf-8')).hexdigest()[:10]}.hotspot"

    def _make_autosaver(self) -> None:
        path = self.project_path
        if path is None:
            root = self.autosave_dir or Path(os.environ.get("NAPARI_HOTSPOT_AUTOSAVE_DIR",
                                                            Path.home() / ".napari-hotspot" / "autosave"))
            path = Path(root) / self.autosave_name()
        video_path, _ = self._video_record()
        self.autosaver = Autosaver(self.store, path, self.autosave_interval_s, video_source=video_path,
                                   extra=self._project_extra, extra_files=self._adaptation_files,
                                   replace_dirs=(ADAPTATION_DIR,))

    def autosave_tick(self) -> bool:
        """Save if the store changed and the interval passed (a QTimer calls this); never while tracking."""
        if self.autosaver is None or self.store is None or self.store.in_batch:
            return False
        try:
            return self.autosaver.maybe_save()
        except ProjectIOError as err:
            self._report(err, warning=True)
            return False

    def flush_autosave(self) -> None:
        """Save now if there are unsaved changes (on close, before switching videos)."""
        if self.autosaver is None or self.store is None or not self.autosaver.dirty or self.store.in_batch:
            return
        try:
            self.autosaver.save_now()
        except ProjectIOError as err:
            self._report(err, warning=True)

    def save_project(self, path: str | os.PathLike | None = None) -> Path | None:
        """Save the project folder (video path, objects, masks, hotspots, prompts); returns its path."""
        try:
            self._require_video()
            if self.store.in_batch:
                raise ProjectIOError("cannot save while tracking; wait for the run to end or cancel it")
            self._finish_refinements()  # the masks the clicks end with, not their first answers
            if path is None:
                path = self.project_path
            if path is None and self.ask_project_path is not None:
                path = self.ask_project_path()
                if not path:  # the user cancelled the dialog: nothing to report as an error
                    self.status.emit("not saved (no folder chosen)")
                    return None
            if not path:
                raise ProjectIOError("no project folder chosen; use 'Save project as…'")
            video_path, _ = self._video_record()
            files = self._adaptation_files()
            saved = save_project(self.store, path, video_source=video_path, extra=self._project_extra(),
                                 extra_files=files, replace_dirs=(ADAPTATION_DIR,))
        except HotspotError as err:
            self._report(err)
            return None
        self.project_path = Path(saved)
        for role in (*OUTPUT_ROLES, ROLE_VIDEO):  # the video too: it now belongs to this project (Save As)
            layer = self.video_layer if role == ROLE_VIDEO else self.layer(role)
            if layer is not None:
                layer.metadata.setdefault(META_KEY, {})["project"] = str(saved)
        self._make_autosaver()
        self.project_changed.emit()
        self._info(f"saved project {saved}")
        return self.project_path

    def open_project(self, path: str | os.PathLike, loaded: tuple[AnnotationStore, dict] | None = None) -> bool:
        """Continue working on a saved project folder.

        When the project belongs to the video already shown, its annotations replace the current
        ones on that video layer; otherwise the project is opened through the napari-hotspot reader
        (its video plus layers). The current annotations are autosaved first. ``loaded``: the
        project's (store, meta) when the caller has read it already (``shown_video_project``).
        """
        from napari_hotspot.annotations.project import is_project_dir

        try:
            if self.busy or self.adapting:
                raise ProjectIOError("cannot open a project while tracking or adapting; cancel the run first")
            if not is_project_dir(path):
                raise ProjectIOError(f"{path} is not a napari-hotspot project folder (no project.json)")
            # read it up front: a broken project changes nothing
            store, meta = loaded if loaded is not None else load_project_quietly(path)
            video = self.video_layer if self._is_project_video(store, meta) else None
            self.flush_autosave()
            if self.video_layer is not None:  # the old output layers are saved with their store: drop them
                for role in OUTPUT_ROLES:
                    layer = self.layer(role)
                    if layer is not None:
                        self.viewer.layers.remove(layer)
                self.set_video(None)
            if video is not None:
                meta_video = video.metadata.setdefault(META_KEY, {})
                meta_video["project"] = str(path)
                meta_video.pop(RESUME_KEY, None)  # the project asked for, not what set_video(None) left
            else:
                layers = self.viewer.open(str(path), plugin="napari-hotspot")
                video = next(la for la in layers if layer_meta(la).get("role") == ROLE_VIDEO)
            self.set_video(video)
        except (HotspotError, StopIteration) as err:
            self._report(err if isinstance(err, HotspotError) else ProjectIOError(f"{path}: no video layer"))
            return False
        self.project_changed.emit()
        self._info(f"opened project {path}")
        return True

    def shown_video_project(self, path: str | os.PathLike) -> tuple[AnnotationStore, dict] | None:
        """The project folder at ``path`` as (store, meta) when it was made for the video this dock
        shows, else None (napari's File > Open of such a project opens it here, ``reader.read_project``,
        passing this to ``open_project``). One that cannot be read is not."""
        if self.video_layer is None:
            return None
        try:
            loaded = load_project_quietly(path)
        except (HotspotError, OSError, ValueError):
            return None
        return loaded if self._is_project_video(*loaded) else None

    def _is_project_video(self, store: AnnotationStore, meta: dict) -> bool:
        """Whether a loaded project was made for the video layer in use."""
        if self.video_layer is None or store.shape != self.store.shape:
            return False
        video_path, record = self._video_record()
        kind = ((meta.get("extra") or {}).get(EXTRA_KEY) or {}).get("video", {}).get("kind")
        if video_path is not None and meta.get("video_path"):
            return Path(meta["video_path"]).resolve() == Path(video_path).resolve()
        return kind == "sample" and record.get("kind") == "sample"

    def export(self, kind: str, path: str | os.PathLike) -> Path | None:
        """Export the annotations: ``kind`` "davis" (PNG folder), "csv"/"json" (hotspots) or "coco"."""
        from napari_hotspot.annotations import io_coco, io_davis, io_hotspots

        try:
            self._require_video()
            if self.store.in_batch:
                raise ProjectIOError("cannot export while tracking; wait for the run to end or cancel it")
            self._finish_refinements()
            if kind == "davis":
                io_davis.export_davis_png(self.store, path, frame_names=self.frame_names)
            elif kind == "csv":
                io_hotspots.export_hotspots_csv(self.store, path)
            elif kind == "json":
                io_hotspots.export_hotspots_json(self.store, path)
            elif kind == "coco":
                # COCO names image files: a frame folder's own files, else the stems as .jpg (io_coco's default)
                files = getattr(self._source, "file_names", None)
                names = files if files and len(files) == self.store.num_frames else (
                    [f"{n}.jpg" for n in self.frame_names] if self.frame_names else None)
                io_coco.export_coco(self.store, path, frame_names=names)
            else:
                raise ProjectIOError(f"unknown export kind {kind!r}; use davis, csv, json or coco")
        except HotspotError as err:
            self._report(err)
            return None
        self._info(f"exported {kind} to {path}")
        return Path(path)

