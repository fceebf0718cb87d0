"""Operations: backups and restores, their retention, maintenance jobs (docs/operations.md)."""
