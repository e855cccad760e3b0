"""The event store's versioned schema migrations (a package so that wheels ship the .sql files)."""
