"""The provider API and workers."""
