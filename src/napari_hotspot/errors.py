"""The project's error types: every message names the offending file or value and what to do."""


class HotspotError(Exception):
    """Base class of every error napari-hotspot raises on purpose (bad input, bad state)."""


class VideoError(HotspotError):
    """A video file or frame folder cannot be opened or decoded."""


class AnnotationError(HotspotError):
    """An annotation is inconsistent: wrong mask shape, unknown object id, frame out of range."""


class PromptError(HotspotError):
    """A prompt cannot be used: click off the image, empty mask, box of zero area."""


class ProjectIOError(HotspotError):
    """A project or export cannot be read or written (missing, corrupt, not writable, disk full)."""


class WeightsError(HotspotError, ValueError):
    """A weights file is not napari-hotspot weights, is corrupt, or does not fit these networks."""
