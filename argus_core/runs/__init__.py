"""Training runs: the run store (``store``, one SQLite file per models directory) and
background trainings (``jobs``: start, cancel, reap, resume; ``recording``: a training
bookkept as a run).

May import: ``argus_core.data``, ``argus_core.model`` (its torch parts only inside a training
process), ``argus_core.errors``. Never torch itself, ``views``, ``live``, ``cli`` or streamlit.
"""
