"""napari-hotspot: semi-automatic video object segmentation with joint hotspot tracking."""

__version__ = "0.1.0"
