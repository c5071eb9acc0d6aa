"""The project's common library: the pieces every service builds on."""
