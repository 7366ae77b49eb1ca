"""``python -m emulator``: the emulator without the ``llmcap`` entry point."""

import argparse
import sys

from capacity.serving import ProfileError, QuotaError
from emulator.cli import add_arguments, serve

parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
add_arguments(parser)
try:
    code = serve(parser.parse_args())
except (ProfileError, QuotaError) as exc:
    print(f"error: {exc}", file=sys.stderr)
    code = 2
raise SystemExit(code)
