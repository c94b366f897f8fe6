"""The run report: one context (``context``), one set of templates (``render``), three faces.

The admin run page (and its live updates while the run goes), the downloads from that page and
``run_perf --html`` all show a run through ``build_report``; a stored run gets there through
``stored`` (perf.persist.load_registry and the run's fields), a run in memory directly.
"""
