"""The Python client of the Moodboard protocol."""
