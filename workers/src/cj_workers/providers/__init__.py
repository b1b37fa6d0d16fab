"""Judges: the LLM providers and the local ones (offline, simulated, mock)."""
