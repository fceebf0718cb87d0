"""Identity and access: users, sessions, service accounts, teams, audit."""
