"""The service kit: settings, CLI, dependencies and the supervisor every component is built from."""
