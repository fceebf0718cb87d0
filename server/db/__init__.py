"""Storage seam: engines, table registry, migrations."""
