"""One module per ``llmcap`` subcommand, each with ``register(subparsers)``."""
