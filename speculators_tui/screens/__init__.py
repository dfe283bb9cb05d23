"""The app's screens: start, the wizard steps, review, dashboard, help."""
