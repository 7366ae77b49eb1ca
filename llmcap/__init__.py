"""llmcap: the command-line composition root over ``bench`` and ``capacity``."""

__version__ = "0.1.0"


def console() -> int:
    """The ``llmcap`` console script: ``llmcap.cli.main``, loaded here so that a Ctrl-C while
    the commands are still importing ends in the same one line as a Ctrl-C during a command
    (``llmcap.errors.describe``), not in a traceback."""
    import sys

    from llmcap.errors import describe

    try:
        from llmcap.cli import main
    except KeyboardInterrupt as exc:
        failure = describe(exc)
        print(failure.line, file=sys.stderr)
        return failure.code
    return main()
