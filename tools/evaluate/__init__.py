"""`make eval`: the whole edge pipeline (int8 models) on every rendered scenario, scored against its truth."""
