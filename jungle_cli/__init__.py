"""jungle_cli."""
