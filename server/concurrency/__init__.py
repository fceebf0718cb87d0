"""Generic concurrency helpers that know nothing of the domain.

Group commit (`group_commit.py`), made-once values (`recent.py`), and the
reconnect schedule with full jitter (`backoff.py`) that the Redis bus, the
LISTEN connection and the Python client share.
"""
