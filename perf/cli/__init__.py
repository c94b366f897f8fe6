"""The command-line side of a run: ``run_perf``'s invocation checked, the run driven, its progress, signals and
exit codes.

The layers and the imports allowed between them: docs/architecture.md (held by tests/test_architecture.py)."""
