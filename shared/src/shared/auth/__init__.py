"""Access tokens: verifying them (``verifier``); ``shared.service.dependencies`` names the caller."""
