"""Root conftest: the real-infrastructure fixtures every test package shares."""

pytest_plugins = ["shared.testing.fixtures"]
