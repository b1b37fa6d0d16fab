"""Scoring: Bradley-Terry fit with standard errors and reliability, and stopping rules.

Pure functions without I/O; the reconciler calls them with data read from PostgreSQL.
"""
