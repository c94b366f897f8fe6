"""The distributed runner: a run split into Celery shards, coordinated from ``run_perf``'s process.

The layers and the imports allowed between them: docs/architecture.md (held by tests/test_architecture.py)."""
