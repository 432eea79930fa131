"""Which hotspot dock is open in which viewer: a registry that the dock (``widget``) writes and the
reader reads (File > Open of a project whose video a dock shows opens it in that dock), kept apart so
that neither module imports the other."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_hotspot._napari.controller import HotspotController
    from napari_hotspot._napari.widget import HotspotWidget

_WIDGETS: weakref.WeakValueDictionary[int, HotspotWidget] = weakref.WeakValueDictionary()


def unwrap(viewer):
    """The viewer itself, not napari's PublicOnlyProxy that plugin widgets and commands receive.

    The controller compares layers by identity (event.value is the video layer, ...), which a proxy
    breaks, and it touches layer data on every streamed frame, where the proxy's checks cost time.
    """
    return getattr(viewer, "__wrapped__", viewer)


def register(viewer, widget: HotspotWidget) -> None:
    _WIDGETS[id(unwrap(viewer))] = widget


def unregister(viewer, widget: HotspotWidget) -> None:
    if _WIDGETS.get(id(unwrap(viewer))) is widget:
        del _WIDGETS[id(unwrap(viewer))]


def widget_for(viewer) -> HotspotWidget | None:
    """The hotspot widget open in ``viewer`` (None when there is none)."""
    return _WIDGETS.get(id(unwrap(viewer)))


def controller_for(viewer) -> HotspotController | None:
    """The controller of the hotspot widget open in ``viewer`` (None when the widget is not open)."""
    widget = widget_for(viewer)
    return None if widget is None else widget.controller
