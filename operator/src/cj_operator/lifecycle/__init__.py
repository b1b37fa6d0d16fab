"""A batch's life: the reasons it reports and the state changes it may make (pure)."""
