"""Batch pre-annotation on Dask."""
