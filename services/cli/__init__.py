"""taskloom.cli."""
