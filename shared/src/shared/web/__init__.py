"""The HTTP side of every component: app factory, problem rendering, middleware, health, metrics, server."""
