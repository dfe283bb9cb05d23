"""Checks that keep a run from losing data or leaking secrets: directory layout, environment names,
the server's host and API key, secrets in `hidden_states.env`. Each returns `Problem`s."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from speculators_core.config.checks import Problem
    from speculators_core.config.schema import RunConfig

#: An environment variable name a shell can assign (`NAME=value`) and expand (`${NAME}`).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A host name or IP address as vLLM/uvicorn take it: no spaces, quotes or shell characters.
HOST = re.compile(r"[A-Za-z0-9:][A-Za-z0-9._:-]*|\[[0-9A-Fa-f:.]+\]")
#: `hidden_states.env` keys whose values are secrets: never written to run.toml, run.sh, stages.json.
#: Whole words between underscores (HF_TOKEN, OPENAI_API_KEY, MY_SECRET), so TOKENIZERS_PARALLELISM,
#: MONKEY_BUSINESS or KEYBOARD stay plain values.
SECRET_KEY = re.compile(r"(?:^|_)(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD|APIKEY)(?:_|$)", re.IGNORECASE)
#: A value that names the variable holding the secret instead of holding it: `${NAME}`, or the
#: placeholder run.toml records (`<redacted: from $NAME>`).
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|<redacted: from \$([A-Za-z_][A-Za-z0-9_]*)>")


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def env_reference(key: str, value: str) -> Optional[str]:
    """The name of the variable a `hidden_states.env` entry takes its value from at spawn time, or
    None for a plain value. A secret key always is a reference: `${NAME}` names the variable, any
    other value (a literal secret) means the variable of the same name as the key."""
    m = _REFERENCE.fullmatch(value.strip())
    if m:
        return m.group(1) or m.group(2)
    return key if is_secret_key(key) else None


def redacted(name: str) -> str:
    """What run.toml records instead of a secret value."""
    return f"<redacted: from ${name}>"


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _inside(a: str, b: str) -> bool:
    """a is b or lies under b."""
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


#: The layout rule, written where the error shows it.
LAYOUT_RULE = ("keep the checkpoint directory, the hidden-states scratch (storage_dir) and the cache in "
               "separate trees: none may be inside another (the scratch is swept after a run, the cache "
               "and checkpoints are kept); scratch, cache and checkpoints may live under data.output, but "
               "data.output may not be inside any of them nor be the checkpoint directory itself")


def layout_problems(cfg: "RunConfig") -> list["Problem"]:
    """Nested directories that would let one stage delete or overwrite another's files."""
    from speculators_core.config.checks import Problem

    d, t = cfg.data, cfg.training
    if not d.output.strip() or not t.checkpoint_dir.strip():
        return []
    dirs = {
        "training.checkpoint_dir": _real(t.checkpoint_dir),
        "hidden_states.storage_dir": _real(cfg.storage_dir),
        "training.hidden_states_cache": _real(cfg.hidden_states_cache),
    }
    out: list[Problem] = []
    seen: set[frozenset] = set()
    # Checkpoints, scratch and cache: no two may nest, either way round.
    for a, pa in dirs.items():
        for b, pb in dirs.items():
            if a == b or frozenset((a, b)) in seen or not (_inside(pa, pb) or _inside(pb, pa)):
                continue
            seen.add(frozenset((a, b)))
            # Name the key the user set (a default derived from data.output is not theirs to move).
            fld = a if _user_set(cfg, a) or not _user_set(cfg, b) else b
            other = b if fld == a else a
            how = "is the same directory as" if pa == pb else ("is inside" if _inside(dirs[fld], dirs[other])
                                                                else "contains")
            out.append(Problem(fld, f"{dirs[fld]} {how} {other} ({dirs[other]})", LAYOUT_RULE))
    output = _real(d.output)
    for k, p in dirs.items():
        if _inside(output, p):
            how = "is the same directory as" if output == p else "is inside"
            out.append(Problem("data.output", f"{output} {how} {k} ({p})", LAYOUT_RULE))
    return out


def _user_set(cfg: "RunConfig", dotted: str) -> bool:
    if dotted == "hidden_states.storage_dir":
        return bool(cfg.hidden_states.storage_dir)
    if dotted == "training.hidden_states_cache":
        return bool(cfg.training.hidden_states_cache)
    return True


def env_problems(cfg: "RunConfig") -> list["Problem"]:
    """hidden_states.env names, api_key_env, the host, and secrets written into the file."""
    from speculators_core.config.checks import Problem

    hs = cfg.hidden_states
    out: list[Problem] = []
    for key, value in hs.env.items():
        fld = f"hidden_states.env.{key}"
        if not ENV_NAME.fullmatch(key):
            out.append(Problem(fld, f"{key!r} is not an environment variable name",
                               "use letters, digits and '_', not starting with a digit (e.g. HF_HOME)"))
            continue
        ref = env_reference(key, value)
        if ref is not None and ref == key and is_secret_key(key) and not _REFERENCE.fullmatch(value.strip()):
            out.append(Problem(fld, "looks like a secret; its value is not written to run.toml, run.sh or "
                                    f"stages.json: the run takes it from the environment variable {key}",
                               f"export {key}=... before the run and write {key} = \"${{{key}}}\" here",
                               "warning"))
    if any(a == "--api-key" or a.startswith("--api-key=") for a in hs.extra_args):
        # The value would be written to run.toml, run.sh, stages.json and the logs as it is.
        out.append(Problem("hidden_states.extra_args", "--api-key puts the key itself on the command line, where "
                                                       "run.toml, run.sh, stages.json and the logs record it",
                           "remove --api-key from extra_args and set hidden_states.api_key_env to the NAME of a "
                           "variable holding the key (vLLM then reads it from VLLM_API_KEY)"))
    if hs.api_key_env and not ENV_NAME.fullmatch(hs.api_key_env):
        out.append(Problem("hidden_states.api_key_env", f"{hs.api_key_env!r} is not an environment variable name",
                           "give the NAME of the variable that holds the key, e.g. SPECULATORS_API_KEY"))
    if not HOST.fullmatch(hs.host):
        out.append(Problem("hidden_states.host", f"{hs.host!r} is not a host name or IP address",
                           "use 127.0.0.1 (this machine only) or an address of this machine"))
    elif not is_loopback(hs.host) and not hs.api_key_env:
        out.append(Problem("hidden_states.host", f"the server listens on {hs.host} without an API key: anyone who "
                                                 "can reach it can use the model and fill the storage directory",
                           "set hidden_states.api_key_env to the NAME of a variable holding a key, or use "
                           "host = \"127.0.0.1\"", "warning"))
    return out


#: Upper bounds: beyond these a value is a typo (1e6 requests in flight, a billion-token sequence).
LIMITS: dict[str, float] = {
    "data.seq_length": 1 << 20, "data.max_samples": 1 << 40, "data.minimum_valid_tokens": 1 << 20,
    "data.num_preprocessing_workers": 1024,
    "hidden_states.data_parallel_size": 1024, "hidden_states.tensor_parallel_size": 1024,
    "hidden_states.max_model_len": 1 << 24, "hidden_states.start_timeout": 7 * 86400.0,
    "training.cpu_processes": 1024, "training.draft_vocab_size": 1 << 22, "training.epochs": 100_000,
    "training.lr": 10.0, "training.total_seq_len": 1 << 20, "training.num_layers": 256,
    "training.ttt_steps": 64, "training.max_in_flight": 4096, "training.max_files_on_disk": 1 << 20,
    "training.grad_clip": 1e6, "training.noise": 1e3, "training.weight_decay": 1e3,
}


def number_problems(cfg: "RunConfig") -> list["Problem"]:
    """NaN/inf in any float, and values above their `LIMITS`."""
    import dataclasses

    from speculators_core.config.checks import Problem

    out: list[Problem] = []
    for sec in dataclasses.fields(cfg):
        obj = getattr(cfg, sec.name)
        for f in dataclasses.fields(obj):
            value: Any = getattr(obj, f.name)
            fld = f"{sec.name}.{f.name}"
            if isinstance(value, float) and not math.isfinite(value):
                out.append(Problem(fld, f"{value} is not a finite number", "use an ordinary number, e.g. the default"))
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and fld in LIMITS \
                    and value > LIMITS[fld]:
                limit = LIMITS[fld]
                out.append(Problem(fld, f"{value} is too large", f"use at most {int(limit) if limit == int(limit) else limit}"))
    return out


def non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
