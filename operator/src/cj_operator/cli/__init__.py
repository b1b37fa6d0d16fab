"""`cjctl`: submit essays as a CJBatch, watch it, and read its results."""
