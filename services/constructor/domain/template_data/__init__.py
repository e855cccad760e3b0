"""The built-in decomposition templates, one YAML file per request type."""
