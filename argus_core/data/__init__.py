"""Datasets, with no torch: the data contract (``schema``), server profiles, the fleet simulator
and its scripted scenario, reading files (``files``), importing real metrics (``importer``) and
the partitioned parquet store (``store``).

May import: ``argus_core.errors``, ``argus_core.atomic`` and itself. Never ``anomaly``,
``model``, ``fleet``, ``views``, ``runs``, ``live``, ``cli``, torch or pytorch-forecasting.
"""
