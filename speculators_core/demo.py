"""CLI: build the embedded demo target (`python -m speculators_core.demo [--model-dir DIR] [--force]`).

The code lives in `speculators_core.builtin.demo`; run scripts call this module path.
"""

import sys

from speculators_core.builtin.demo import main

if __name__ == "__main__":
    sys.exit(main())
