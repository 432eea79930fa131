"""Batch pre-annotation on Dask: `napari-hotspot batch MANIFEST --out DIR`.

manifest (CSV parsing and validation), worker (one video as a task, atomic outputs), runner (the
driver: skip, submit, collect, report, Ctrl-C), cli (arguments, local or remote cluster), results
(the finished projects of a batch folder, for napari), local_worker (local workers leave Ctrl-C to
the driver).
"""
