"""Checks of what a run produced, or of a notebook as stored: outputs, execution order, coverage."""
