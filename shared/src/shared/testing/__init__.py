"""Test support: pytest fixtures, stand-ins, waits and fault injectors (never imported at run time)."""
