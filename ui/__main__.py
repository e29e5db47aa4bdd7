"""``python -m ui [PROJECT] [--train --quit-after S --screenshot PNG]``: the desktop app."""

import sys

from bplab.ui.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
