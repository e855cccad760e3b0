"""taskloom.gateway."""
