"""Adapters of the context service: PostgreSQL storage, encryption at rest, the policy file."""
