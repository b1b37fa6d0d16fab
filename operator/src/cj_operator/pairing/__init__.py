"""Pair selection: which essays to compare next, and in which slot order.

Pure functions without I/O; the reconciler calls them with the history read from PostgreSQL.
"""
