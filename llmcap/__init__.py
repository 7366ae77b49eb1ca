"""llmcap: the command-line composition root over ``bench`` and ``capacity``."""

__version__ = "0.1.0"
