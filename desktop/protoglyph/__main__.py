"""``python -m protoglyph``: the same as the ``protoglyph`` command."""

import sys

from protoglyph.cli import main

sys.exit(main())
