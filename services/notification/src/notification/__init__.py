"""The notification service: in-app notifications and e-mail, fed by events."""
