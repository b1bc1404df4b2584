"""nbharness: notebooks as tests, diffs and modules, in the tools people already use."""

from importlib.metadata import version

from .notebook import iri_grammar

__version__ = version("nbharness")
iri_grammar.defer()  # before anything imports nbformat: every entry point comes through here
