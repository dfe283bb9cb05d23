"""The `regenerate` stage of a run (`[data] regenerate = true`): before prepare, on the run's server
(the hf engine serves generation and hidden states from one start) or on data.regenerate_endpoints."""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

from speculators_core.config import RunConfig
from speculators_core.paths import resolve_data_source
from speculators_core.plan import flags as stage_args
from speculators_core.plan.flags import extra_flags


def regenerate_stage(cfg: RunConfig, run_endpoints: list[str], run_dir: Optional[str], key_from: dict[str, str],
                     own_server: bool = True):
    """run_endpoints: the run's own server ([its URL], own_server) or, for a cluster, the servers
    started elsewhere (own_server=False: the plan's `wait` stage has waited for them)."""
    from speculators_core.plan.stages import Stage

    d = cfg.data
    own = not d.regenerate_endpoints and own_server
    argv = [sys.executable, "-m", "speculators_core.regenerate"]
    for url in (d.regenerate_endpoints or run_endpoints):
        argv += ["--endpoint", url]
    for src in d.sources:
        argv += ["--data", resolve_data_source(src)]
    argv += ["--output", cfg.regenerated_data]
    kwargs = d.regenerate_chat_template_kwargs.strip()
    if kwargs:
        kwargs = json.dumps(json.loads(kwargs), separators=(",", ":"))  # validate() checked it is an object
    argv += extra_flags(stage_args.regenerate_parser, {
        "--max-samples": d.max_samples,
        "--max-tokens": d.regenerate_max_tokens,
        "--temperature": d.regenerate_temperature,
        "--top-p": d.regenerate_top_p,
        "--seed": d.seed,
        "--concurrency": d.regenerate_concurrency,
        "--turns": d.regenerate_turns,
        "--chat-template-kwargs": kwargs or None,
        "--resume": True,  # a re-run of the stage continues what is written
        "--metrics-file": os.path.join(run_dir, "metrics.jsonl") if run_dir else None,
        "--api-key-env": cfg.hidden_states.api_key_env or None,
    })
    where = ("the run's server" if own else
             f"{len(d.regenerate_endpoints)} endpoint(s)" if d.regenerate_endpoints else
             f"{len(run_endpoints)} cluster server(s)")
    return Stage("regenerate", argv, env={"CUDA_VISIBLE_DEVICES": ""}, env_from=dict(key_from), needs_server=own,
                 log="regenerate.log",
                 description=f"regenerate the assistant answers with the target ({where}, at most "
                             f"{d.regenerate_max_tokens} tokens each, temperature {d.regenerate_temperature:g})")
