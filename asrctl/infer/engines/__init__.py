"""Engines execute inference work items; asrctl.infer.job holds the contract they share."""
