"""Leaves: modules that import nothing of the project (crypto, card facts, errors, formatting, logs, JSON)."""
