"""nbharness: notebooks as tests, diffs and modules, in the tools people already use."""

from importlib.metadata import version

__version__ = version("nbharness")
