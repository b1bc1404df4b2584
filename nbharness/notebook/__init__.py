"""Notebooks as files: reading, validating and writing them, and what their metadata says."""
