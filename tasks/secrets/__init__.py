"""Secrets with SOPS + age (spec section 10): the logic of inv secrets.*
(tasks/secrets_tasks.py) and the reading API other tasks use (store.SecretStore)."""
