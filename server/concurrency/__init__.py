"""Generic concurrency helpers that know nothing of the domain (group commit, made-once values)."""
