"""The store: every database write of a run on its own thread, the rows a registry becomes, and a run's liveness.

The layers and the imports allowed between them: docs/architecture.md (held by tests/test_architecture.py)."""
