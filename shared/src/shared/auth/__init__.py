"""Access tokens: verifying them and the FastAPI dependencies that name the caller."""
