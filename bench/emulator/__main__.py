"""``python -m bench.emulator``: the emulator without the ``llmcap`` entry point."""

import argparse

from bench.emulator.cli import add_arguments, serve

parser = argparse.ArgumentParser(prog="python -m bench.emulator", description=__doc__)
add_arguments(parser)
raise SystemExit(serve(parser.parse_args()))
