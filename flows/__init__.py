"""proofcheck's Prefect 3 shell around the pure engine in ``validators``."""
