"""taskloom.constructor."""
