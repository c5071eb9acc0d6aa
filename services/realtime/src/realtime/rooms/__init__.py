"""Chat rooms (contract section 6): storage, the HTTP API, the /ws frames, presence and broadcasts."""
