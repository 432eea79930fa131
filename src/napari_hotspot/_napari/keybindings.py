"""Every keyboard shortcut of the hotspot tracking widget, in one table, and the code that binds them.

The table is the single source: ``bind_keys`` binds it to a viewer, ``markdown_table`` writes
docs/shortcuts.md (``python -m napari_hotspot._napari.keybindings > docs/shortcuts.md``).
Keys are chosen so they do not collide with napari's own layer shortcuts (letters used by the
Labels, Points and Shapes layers are left alone); undo/redo also override the masks layer's own
Ctrl+Z so that one key undoes whole prompts, corrections and propagation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from napari_hotspot._napari.controller import HotspotController


@dataclass(frozen=True)
class Shortcut:
    """One shortcut: napari key string, the controller method it calls (with kwargs), what it does."""

    key: str
    action: str
    description: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    group: str = ""


SHORTCUTS: tuple[Shortcut, ...] = (
    # prompting
    Shortcut("N", "toggle_click_label", "Toggle the next click between positive and negative", group="Prompt"),
    Shortcut("G", "auto_prompt", "Auto prompt: EG-Net picks the salient object on the current frame", group="Prompt"),
    Shortcut("Shift-N", "add_object", "Add a new object and select it", group="Prompt"),
    Shortcut("U", "select_next_object", "Select the next object in the list", group="Prompt"),
    Shortcut("Shift-U", "select_previous_object", "Select the previous object in the list", group="Prompt"),
    # tracking
    Shortcut("Shift-F", "track", "Track forward (objects and frame range as set in the widget)",
             (("direction", "forward"),), group="Track"),
    Shortcut("Shift-B", "track", "Track backward", (("direction", "backward"),), group="Track"),
    Shortcut("Shift-T", "track", "Track both directions", (("direction", "both"),), group="Track"),
    Shortcut("Shift-R", "repropagate_from_here",
             "Re-propagate from the current frame both ways, up to the next keyframe on each side", group="Track"),
    Shortcut("Shift-C", "cancel", "Cancel the running propagation or adaptation (keeps what is done so far)", group="Track"),
    Shortcut("Shift-M", "toggle_keyframe",
             "Keep the current frame's tracked masks as keyframes (again: unmark those it marked)", group="Correct"),
    # correction
    Shortcut("Control-Z", "undo", "Undo the last prompt, correction or whole propagation run", group="Correct"),
    Shortcut("Control-Shift-Z", "redo", "Redo", group="Correct"),
    # QA / navigation
    Shortcut("K", "next_keyframe", "Jump to the next keyframe of the selected object", group="QA"),
    Shortcut("Shift-K", "previous_keyframe", "Jump to the previous keyframe of the selected object", group="QA"),
    Shortcut("J", "next_low_confidence", "Jump to the next frame whose confidence is below the threshold",
             group="QA"),
    Shortcut("Shift-J", "previous_low_confidence", "Jump to the previous low-confidence frame", group="QA"),
    # saving
    Shortcut("Shift-S", "save_project", "Save the project (to its folder; asks for one the first time)",
             group="Save"),
)


def _callback(controller: HotspotController, shortcut: Shortcut) -> Callable[[Any], None]:
    kwargs = dict(shortcut.kwargs)

    def run(_viewer_or_layer: Any = None) -> None:
        getattr(controller, shortcut.action)(**kwargs)

    run.__doc__ = shortcut.description  # napari's shortcut help shows the docstring
    run.__name__ = f"hotspot_{shortcut.action}"
    return run


def bind_keys(viewer: Any, controller: HotspotController, layers: tuple = ()) -> list[str]:
    """Bind every shortcut on ``viewer``; Ctrl+Z/Ctrl+Shift+Z also on ``layers`` (they win over the viewer).

    Returns the bound keys. Existing bindings of these keys on the viewer are replaced.
    """
    bound = []
    for shortcut in SHORTCUTS:
        viewer.bind_key(shortcut.key, _callback(controller, shortcut), overwrite=True)
        bound.append(shortcut.key)
    bind_layer_keys(layers, controller)
    return bound


def bind_layer_keys(layers, controller: HotspotController) -> None:
    """Route the masks layer's own undo/redo keys to the annotation store's undo/redo."""
    for layer in layers:
        for shortcut in SHORTCUTS:
            if shortcut.action in ("undo", "redo"):
                layer.bind_key(shortcut.key, _callback(controller, shortcut), overwrite=True)


def unbind_layer_keys(layers) -> None:
    """Undo ``bind_layer_keys`` (the layers' class bindings, napari's own undo, apply again)."""
    for layer in layers:
        for shortcut in SHORTCUTS:
            if shortcut.action in ("undo", "redo"):
                try:
                    layer.bind_key(shortcut.key, None, overwrite=True)
                except (KeyError, ValueError, TypeError):
                    pass


def unbind_keys(viewer: Any) -> None:
    """Remove this module's bindings from ``viewer`` (when the widget closes)."""
    for shortcut in SHORTCUTS:
        try:
            viewer.bind_key(shortcut.key, None, overwrite=True)
        except (KeyError, ValueError, TypeError):
            pass


def _display_key(key: str) -> str:
    parts = key.split("-")
    names = {"Control": "Ctrl"}
    return "+".join(names.get(p, p) for p in parts)


def markdown_table() -> str:
    """docs/shortcuts.md: the shortcut table as Markdown."""
    lines = [
        "# Keyboard shortcuts",
        "",
        "Generated from `src/napari_hotspot/_napari/keybindings.py` "
        "(`python -m napari_hotspot._napari.keybindings > docs/shortcuts.md`).",
        "They work while the Hotspot tracking widget is open. Keys are chosen not to clash with",
        "napari's own Labels, Points and Shapes shortcuts; Ctrl+Z on the masks layer undoes whole",
        "prompts, corrections and propagation runs instead of single brush strokes.",
        "",
        "| Group | Key | Action |",
        "| --- | --- | --- |",
    ]
    for shortcut in SHORTCUTS:
        lines.append(f"| {shortcut.group} | `{_display_key(shortcut.key)}` | {shortcut.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
