"""The footer of every screen: compact, and without the palette key, on narrow terminals.

At 80 columns Textual's roomy footer cut the review screen's keys to "esc Ba"; compact keys fit
there, and ctrl+p stays listed in the help screen.
"""

from __future__ import annotations

from textual.widgets import Footer

#: Below this width the footer is compact and leaves out the command-palette key.
NARROW = 120


class AppFooter(Footer):
    def on_resize(self) -> None:
        narrow = self.app.size.width < NARROW
        self.compact = narrow
        self.show_command_palette = not narrow
