"""``python -m motive`` (and ``torchrun -m motive``) runs the CLI."""

import sys

from motive.cli import main

sys.exit(main())
