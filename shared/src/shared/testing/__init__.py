"""Test support, never imported at run time; pytest comes with the ``shared[testing]`` extra.

fixtures: the pytest plugin (a database and a vhost per run); users: the users service as its callers
see it; tokens: access tokens and the JWKS that verifies them; servers: apps under uvicorn in a thread;
waits: ``eventually``, instead of sleeping; tools: outside programs, or a failure saying what to
install; tcpproxy: a link to cut. A service's own helpers live in ``<service>/tests/support``.
"""
