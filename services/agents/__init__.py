"""taskloom.agents."""
