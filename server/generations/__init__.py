"""AI generations: credit-backed requests and the job queue."""
