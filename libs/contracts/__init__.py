"""taskloom.contracts."""
