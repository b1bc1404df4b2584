"""nbharness: notebooks as tests, diffs and modules, in the tools people already use."""

from .notebook import iri_grammar

iri_grammar.defer()  # before anything imports nbformat: every entry point comes through here


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata when asked for: importing
    ``importlib.metadata`` costs the CLI and the hooks about 45 ms on every commit."""
    if name == "__version__":
        from importlib.metadata import version

        return version("nbharness")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
