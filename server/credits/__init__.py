"""Credit balances and their ledger."""
