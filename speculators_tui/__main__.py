import sys

from speculators_tui.cli import main

sys.exit(main())
