"""`python -m sglc.runtime.server ...`: the same as `sglc serve ...`."""

import sys

from sglc.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
