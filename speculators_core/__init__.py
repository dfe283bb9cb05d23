"""speculators_core: the engine of speculators-tui (data prep, hidden-states serving, EAGLE-3
training, run supervision). Never imports Textual; every stage is a plain CLI
(`python -m speculators_core.<stage>`)."""

__version__ = "0.1.0"
