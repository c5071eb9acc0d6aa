"""RabbitMQ: the event catalogue, the broker link, the outbox, consumers and dead letters."""
