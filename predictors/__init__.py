"""Latency and accuracy predictors, their features, metrics and persistence."""
