"""``python -m emulator``: the emulator without the ``llmcap`` entry point."""

import argparse

from emulator.cli import add_arguments, serve

parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
add_arguments(parser)
raise SystemExit(serve(parser.parse_args()))
