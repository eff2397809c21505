"""Real-service fixtures live in tests/conftest.py (the e2e tests share them)."""
