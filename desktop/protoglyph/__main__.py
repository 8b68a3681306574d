"""``python -m protoglyph``: the same as the ``protoglyph`` command."""

import sys

from protoglyph.cli import main

# Guarded: worker processes (spawned for folder labeling) import this module again.
if __name__ == "__main__":
    sys.exit(main())
