"""``python -m scene2world``: the same command line as the ``scene2world`` script."""

from __future__ import annotations

import sys

from scene2world.cli import main

if __name__ == "__main__":
    sys.exit(main())
