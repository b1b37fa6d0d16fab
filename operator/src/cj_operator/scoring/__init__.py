"""Scoring: Bradley-Terry fit with standard errors and reliability, stopping rules, and
diagnostics (order effect of the slots, infit/outfit misfit of essays and judges).

Pure functions without I/O; the reconciler calls them with data read from PostgreSQL.
"""
