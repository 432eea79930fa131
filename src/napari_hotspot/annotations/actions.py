"""Undoable actions on an AnnotationStore and the undo/redo history that holds them.

Every mutation of the store is one of three primitive "replace a slot" actions (an entry, an
object, an annotator's hotspot), each carrying the old and new value so its inverse is exact.
Groups bundle many primitives into one undo step (e.g. a whole propagation run).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_hotspot.annotations.model import (
        AnnotationStore,
        AnnotatorHotspot,
        FrameAnnotation,
        ObjectInfo,
    )


class StoreAction(ABC):
    """One reversible change to an AnnotationStore."""

    @abstractmethod
    def apply(self, store: AnnotationStore) -> None:
        """Perform the change on ``store``."""

    @abstractmethod
    def inverse(self) -> StoreAction:
        """The action that undoes this one."""

    @abstractmethod
    def touched(self) -> Iterator[tuple[int, int | None]]:
        """(object id, frame or None) pairs this action changes, for change notification."""


@dataclass(frozen=True)
class SetEntry(StoreAction):
    """Replace the (object, frame) entry; ``None`` means no entry."""

    obj_id: int
    frame: int
    new: FrameAnnotation | None
    old: FrameAnnotation | None

    def apply(self, store: AnnotationStore) -> None:
        store._put_entry(self.obj_id, self.frame, self.new)

    def inverse(self) -> SetEntry:
        return SetEntry(self.obj_id, self.frame, self.old, self.new)

    def touched(self) -> Iterator[tuple[int, int | None]]:
        yield (self.obj_id, self.frame)


@dataclass(frozen=True)
class SetObject(StoreAction):
    """Add, replace or remove an object; ``position`` is its place in the stacking order."""

    obj_id: int
    new: ObjectInfo | None
    old: ObjectInfo | None
    position: int

    def apply(self, store: AnnotationStore) -> None:
        store._put_object(self.obj_id, self.new, self.position)

    def inverse(self) -> SetObject:
        return SetObject(self.obj_id, self.old, self.new, self.position)

    def touched(self) -> Iterator[tuple[int, int | None]]:
        yield (self.obj_id, None)


@dataclass(frozen=True)
class SetAnnotatorHotspot(StoreAction):
    """Replace one annotator's hotspot label for (object, frame); ``None`` means no label."""

    annotator: str
    obj_id: int
    frame: int
    new: AnnotatorHotspot | None
    old: AnnotatorHotspot | None

    def apply(self, store: AnnotationStore) -> None:
        store._put_annotator_hotspot(self.annotator, self.obj_id, self.frame, self.new)

    def inverse(self) -> SetAnnotatorHotspot:
        return SetAnnotatorHotspot(self.annotator, self.obj_id, self.frame, self.old, self.new)

    def touched(self) -> Iterator[tuple[int, int | None]]:
        yield (self.obj_id, self.frame)


class ActionGroup(StoreAction):
    """Several actions applied in order and undone in reverse order, as one undo step."""

    def __init__(self, actions: Sequence[StoreAction], name: str = "") -> None:
        self.actions = list(actions)
        self.name = name

    def apply(self, store: AnnotationStore) -> None:
        for action in self.actions:
            action.apply(store)

    def inverse(self) -> ActionGroup:
        return ActionGroup([a.inverse() for a in reversed(self.actions)], self.name)

    def touched(self) -> Iterator[tuple[int, int | None]]:
        for action in self.actions:
            yield from action.touched()

    def __len__(self) -> int:
        return len(self.actions)

    def __repr__(self) -> str:
        return f"ActionGroup(name={self.name!r}, {len(self.actions)} actions)"


def action_name(action: Any) -> str:
    """A short human-readable name for an action (for "Undo <name>" menu entries)."""
    if isinstance(action, ActionGroup) and action.name:
        return action.name
    return type(action).__name__


class ActionHistory:
    """Undo and redo stacks; adding a new action drops the redo stack."""

    def __init__(self, max_steps: int = 200) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps = max_steps
        self._undo: list[StoreAction] = []
        self._redo: list[StoreAction] = []

    def add_new_action(self, action: StoreAction) -> None:
        self._undo.append(action)
        if len(self._undo) > self.max_steps:
            del self._undo[0]
        self._redo.clear()

    def pop_undo(self) -> StoreAction | None:
        """The last done action (moved to the redo stack), or None when there is nothing to undo."""
        if not self._undo:
            return None
        action = self._undo.pop()
        self._redo.append(action)
        return action

    def pop_redo(self) -> StoreAction | None:
        """The last undone action (moved back to the undo stack), or None."""
        if not self._redo:
            return None
        action = self._redo.pop()
        self._undo.append(action)
        return action

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def done(self) -> list[StoreAction]:
        """The undo stack, oldest first (a copy)."""
        return list(self._undo)

    @property
    def undone(self) -> list[StoreAction]:
        """The redo stack (a copy)."""
        return list(self._redo)

    def replace_done(self, index: int, action: StoreAction) -> None:
        """Put ``action`` in place of the undo stack's step ``index`` (an amended result of that step)."""
        self._undo[index] = action

    def undo_name(self) -> str | None:
        return action_name(self._undo[-1]) if self._undo else None

    def redo_name(self) -> str | None:
        return action_name(self._redo[-1]) if self._redo else None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
