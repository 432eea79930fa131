"""Qt pieces that keep the docks inside napari's dock area: only vertical scrolling, ever."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QWidget

#: Characters a long path or name may break after (a zero-width space is inserted for display).
_BREAK_AFTER = ("/", "\\", "_")


class WrappingLabel(QLabel):
    """A word-wrapping label that never sets the dock's width: long paths break after '/', '\\' and
    '_' (a plain QLabel is as wide as its longest word, and a path is one word); the full text is
    also its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self.setToolTip(text if len(text) > 40 else "")
        for ch in _BREAK_AFTER:
            text = text.replace(ch, ch + "\u200b")
        super().setText(text)

    def text(self) -> str:
        return super().text().replace("\u200b", "")


def vertical_scroll(page: QWidget) -> QScrollArea:
    """``page`` in a scroll area that scrolls only vertically (its width follows the dock)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    area.setFrameShape(QFrame.NoFrame)
    area.setWidget(page)
    return area


def sideways_scroll(widget: QWidget) -> list[str]:
    """Why ``widget`` scrolls sideways (empty when it does not): scroll areas in it showing a horizontal
    bar, or content that needs more width than the widget has."""
    from qtpy.QtWidgets import QAbstractScrollArea

    problems = []
    for area in [widget, *widget.findChildren(QAbstractScrollArea)]:
        if isinstance(area, QAbstractScrollArea) and area.isVisible() and area.horizontalScrollBar().isVisible():
            problems.append(f"{type(area).__name__} shows a horizontal scroll bar")
    need = widget.minimumSizeHint().width()
    if need > widget.width():
        problems.append(f"{type(widget).__name__} needs {need} px and gets {widget.width()}")
    return problems
