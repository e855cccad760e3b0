"""taskloom.bus."""
