"""Scheduled jobs: cron schedules that run once across replicas, state in the service's own schema.

``job`` (what a service declares), ``schedule`` (cron via cronsim), ``tables`` (``jobs``, ``job_runs``),
``store`` (the lease and every statement), ``scheduler`` (the loop every replica runs), ``router`` (the
admin API), ``cli`` (``jobs list | run``), ``purge`` (batched deletes), ``metrics``, ``clock``.
"""
