"""CJBatch status: the model, the pure building of it from database state, and the patcher."""
