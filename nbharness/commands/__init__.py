"""One module per ``nbharness`` subcommand, each a few lines over library functions."""
