"""The run configuration: `schema` (the typed sections), `toml_io` (TOML load/save with file:line
errors), `checks` (`validate()` -> `Problem`s with fixes), `presets` (built-in and user presets).

Everything is re-exported here: `from speculators_core.config import RunConfig, load, validate`.
The target's facts (`speculators_core.target`) are re-exported too, for validation's callers.
"""

from speculators_core.config.schema import (  # noqa: F401
    CONNECTORS, DEVICES, ENGINES, LOGGERS, MODE_FLAGS, MODE_HELP, MODES, SCHEDULERS, SECTIONS, ConfigError,
    DataSection, HiddenStatesSection, ModelSection, RunConfig, RunSection, TrainingSection, section_class,
)
from speculators_core.config.toml_io import dumps, from_dict, load, loads, save, to_dict  # noqa: F401
from speculators_core.config.checks import (  # noqa: F401
    Problem, default_layer_ids, errors, for_export, layer_id_problems, resolved_layer_ids, server_python_problems,
    suggest_layer_ids, validate,
)
from speculators_core.target import TargetInfo, TargetNotFound, load_target, try_load_target  # noqa: F401
