"""Video sources: lazy frame access for files and frame folders."""
