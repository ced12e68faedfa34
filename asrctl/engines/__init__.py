"""Engines execute inference work items; see asrctl.inference for the semantics they share."""
