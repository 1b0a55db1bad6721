"""``python -m linop``: the command line."""

import sys

from linop.cli import main

if __name__ == "__main__":
    sys.exit(main())
