"""Root conftest: the real-infrastructure fixtures every test package shares."""

# Import the real ``gateway`` package before pytest collects gateway/tests: with --import-mode=importlib
# that folder's modules are named ``gateway.tests.*``, and pytest would otherwise register the folder
# itself as the ``gateway`` module, hiding the package. (``shared`` is imported by the plugin below.)
import gateway  # noqa: F401

pytest_plugins = ["shared.testing.fixtures"]
