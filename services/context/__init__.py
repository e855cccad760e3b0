"""taskloom.context."""
