"""taskloom.eventstore."""
