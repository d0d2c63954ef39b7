"""``python -m lazyrich_theory.cli ARGS`` = ``lazyrich ARGS``."""

import sys

from lazyrich_theory.cli.app import main

sys.exit(main())
