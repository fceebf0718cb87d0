"""Projects and their content: members, rooms, board items, resources."""
