"""Postgres: engines, the unit of work, pagination, migrations and the development bootstrap."""
