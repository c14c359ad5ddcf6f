"""What operators look at and steer: queues (and their pause), workers, and the status line."""
