"""perfkit's scenario pack for the events platform: its eight scenarios, API and Mailpit clients, the
names of the data they expect, ``bootstrap_perf_tests`` that seeds it, and the integrity checks of that
data after a run. perfkit's generic app (``perf``) finds it through the ``PERF_*`` settings
(docs/architecture.md).
"""
