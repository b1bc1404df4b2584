"""Notebooks in version control: paired scripts and sync, export, review text and merge, git."""
