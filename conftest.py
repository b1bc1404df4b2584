"""Root conftest: pytester drives nbharness inside throwaway pytest sessions."""

pytest_plugins = ["pytester"]
