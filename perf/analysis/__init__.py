"""What is checked after a run: the integrity audit, the comparison with a baseline, the reconciliation with the
server's access log.

The layers and the imports allowed between them: docs/architecture.md (held by tests/test_architecture.py)."""
