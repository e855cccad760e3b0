"""taskloom.orchestrator."""
