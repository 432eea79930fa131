"""The thin napari/Qt layer: reader, writer, sample data, widgets."""
