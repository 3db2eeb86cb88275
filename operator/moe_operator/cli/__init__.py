"""moectl: the command-line interface."""
