"""The provider API (`python -m cj_workers.api`): validate, enqueue, answer 202."""
