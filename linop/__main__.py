"""``python -m linop``: the command line."""

import sys

from linop.cli import main

sys.exit(main())
