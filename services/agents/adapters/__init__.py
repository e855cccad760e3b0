"""The agent runtime's connections to the outside: JetStream, the context service, child processes."""
