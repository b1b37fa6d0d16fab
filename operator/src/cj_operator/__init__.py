"""The CJBatch operator."""
