"""Modal dialogs (typed results via dismiss())."""
