"""python -m shenjing: the command line (see shenjing.cli)."""

import sys

from .cli import main

sys.exit(main())
