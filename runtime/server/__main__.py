"""`python -m sglc.runtime.server ...`: the same as `sglc serve ...`."""

import sys

from sglc.runtime.server.cli import main

sys.exit(main())
