"""Reframing: crop-path optimisation and rendering."""
