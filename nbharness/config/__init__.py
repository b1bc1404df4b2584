"""Where settings come from: the project's ``pyproject.toml`` and pytest's options."""
