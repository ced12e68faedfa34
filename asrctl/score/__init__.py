"""Scoring (`asrctl eval`): text normalisers, error counts and rates, the evaluation of a predictions
manifest with breakdowns and comparisons, and the HTML report."""
