"""REST controllers and HTTP plumbing."""
