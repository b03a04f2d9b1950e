"""Everything that imports napari or Qt: layers, reader/writer hooks, widgets, sample data."""
