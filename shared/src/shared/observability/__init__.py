"""Logs, traces and the request id that ties them together."""
