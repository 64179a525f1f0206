"""`python -m sglc` is the `sglc` command."""

import sys

from sglc.cli import main

sys.exit(main())
