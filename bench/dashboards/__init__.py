"""The Grafana dashboards drawn from a bench run (``python -m bench.dashboards``, ``make dashboards``)."""
