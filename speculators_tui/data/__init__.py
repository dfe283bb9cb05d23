"""UI-free helpers of the app: config field editing and run-directory reading (no textual here)."""
