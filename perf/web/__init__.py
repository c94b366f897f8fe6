"""The admin's controls: the New run form and Stop, launching a run as its own process, the demo's admin login.

The layers and the imports allowed between them: docs/architecture.md (held by tests/test_architecture.py)."""
