"""Process plumbing shared by the operator (`cj_operator`) and the provider side (`cj_workers`):
what both do the same way, written once. Contracts live in `common_core`, not here."""
