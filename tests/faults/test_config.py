"""Fault matrix, area `config`: bad configurations through the real CLI (`validate`, `export`,
`run --headless`). Each case: a clear exit code, a message naming the key (file:line where the key
is in the file) and the fix, never a traceback, never a run directory left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BASE = """\
[model]
target = "builtin:tiny-qwen3"

[data]
sources = ["builtin:demo-chat"]
output = "./out/data"
seq_length = 1024

[hidden_states]
engine = "hf"
port = 18999
gpus = []
target_layer_ids = [2, 4, 8]

[training]
gpus = []
draft_vocab_size = 256
checkpoint_dir = "./out/checkpoints"

[run]
name = "fault"
dir = "./runs"
"""


def _with(text: str, section: str, line: str) -> str:
    """BASE with `line` added at the top of `[section]` (a later duplicate key is a TOML error, so
    keys replaced here are first removed)."""
    key = line.split("=", 1)[0].strip()
    out, current = [], None
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("[") and s.endswith("]"):
            current = s.strip("[]")
            out.append(raw)
            if current == section:
                out.append(line)
            continue
        if current == section and s.split("=", 1)[0].strip() == key and "=" in s:
            continue
        out.append(raw)
    return "\n".join(out) + "\n"


def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "speculators_tui", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def line_of(text: str, needle: str, section: str = "") -> int:
    current = ""
    for i, ln in enumerate(text.splitlines(), 1):
        if ln.startswith("["):
            current = ln.strip("[] ")
        elif ln.strip().startswith(needle) and current.startswith(section):
            return i
    raise AssertionError(needle)


def assert_clean_failure(res: subprocess.CompletedProcess, *needles: str) -> None:
    out = res.stdout + res.stderr
    assert res.returncode in (1, 2), out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, f"{n!r} not in:\n{out}"


# --------------------------------------------------------------------------- finding 12: numbers
NUMERIC = [
    # (section, line, key, a word of the fix)
    ("hidden_states", "start_timeout = inf", "hidden_states.start_timeout", "finite"),
    ("hidden_states", "start_timeout = nan", "hidden_states.start_timeout", "finite"),
    ("training", "lr = nan", "training.lr", "finite"),
    ("training", "weight_decay = -inf", "training.weight_decay", "finite"),
    ("hidden_states", "gpu_memory_utilization = nan", "hidden_states.gpu_memory_utilization", "finite"),
    ("data", "seq_length = 1000000000", "data.seq_length", "at most"),
    ("data", "seq_length = 1e9", "data.seq_length", "integer"),
    ("data", "seq_length = 1", "data.seq_length", "at least 2"),
    ("training", "max_in_flight = 1000000", "training.max_in_flight", "at most"),
    ("training", "total_seq_len = 1000000000", "training.total_seq_len", "at most"),
    ("hidden_states", "tensor_parallel_size = 0", "hidden_states.tensor_parallel_size", "greater than 0"),
    ("hidden_states", "data_parallel_size = 0", "hidden_states.data_parallel_size", "greater than 0"),
    ("training", "epochs = 100000000", "training.epochs", "at most"),
]


@pytest.mark.fault("config")
@pytest.mark.parametrize("section,line,key,fix", NUMERIC, ids=[c[1] for c in NUMERIC])
def test_bad_numbers_validate_with_file_line_and_fix(tmp_path, section, line, key, fix):
    text = _with(BASE, section, line)
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, key, fix, f"{p}:{line_of(text, line.split('=')[0].strip(), section)}")


@pytest.mark.fault("config")
@pytest.mark.parametrize("verb", ["export", "run"])
@pytest.mark.parametrize("line", ["start_timeout = inf", "tensor_parallel_size = 0"])
def test_bad_numbers_never_crash_export_or_run_and_leave_no_run_dir(tmp_path, verb, line):
    p = write(tmp_path, _with(BASE, "hidden_states", line))
    args = ["run", str(p), "--headless"] if verb == "run" else ["export", str(p)]
    res = cli(tmp_path, *args, timeout=120)
    assert_clean_failure(res, "hidden_states.")
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())


@pytest.mark.fault("config")
def test_non_utf8_toml_is_an_error_with_line(tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_bytes(BASE.encode() + b'# caf\xe9\n')
    res = cli(tmp_path, "validate", str(p))
    n = len(BASE.splitlines()) + 1
    assert_clean_failure(res, f"{p}:{n}", "UTF-8")
    res = cli(tmp_path, "export", str(p))
    assert_clean_failure(res, "UTF-8")


@pytest.mark.fault("config")
def test_semantic_problems_name_file_and_line(tmp_path):
    text = _with(BASE, "training", "gpus = [0, 0]")
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, f"{p}:{line_of(text, 'gpus = [0, 0]', 'training')}: training.gpus", "use [0]")


# --------------------------------------------------------------------------- finding 1: nested dirs
NESTED = [
    # storage inside the checkpoint dir, checkpoints inside storage or the cache, cache == storage ...
    ({"hidden_states": 'storage_dir = "./out"', "training": 'checkpoint_dir = "./out/checkpoints"'},
     "training.checkpoint_dir"),
    ({"hidden_states": 'storage_dir = "./out/checkpoints/scratch"'}, "hidden_states.storage_dir"),
    ({"training": 'hidden_states_cache = "./out/checkpoints/cache"'}, "training.hidden_states_cache"),
    ({"training": 'checkpoint_dir = "./out/data/hidden_states/ck"'}, "training.checkpoint_dir"),
    ({"hidden_states": 'storage_dir = "./shared"', "training": 'hidden_states_cache = "./shared"'},
     "training.hidden_states_cache"),
    ({"training": 'checkpoint_dir = "./out/data"'}, "training.checkpoint_dir"),
    ({"data": 'output = "./out/checkpoints/data"'}, "data.output"),
]


@pytest.mark.fault("config")
@pytest.mark.parametrize("lines,key", NESTED, ids=[k + str(i) for i, (_, k) in enumerate(NESTED)])
def test_nested_storage_checkpoint_cache_dirs_are_errors(tmp_path, lines, key):
    text = BASE
    for section, line in lines.items():
        text = _with(text, section, line)
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, key, "fix:")


@pytest.mark.fault("config")
def test_default_layout_is_not_nested(tmp_path):
    """storage and cache under data.output (the defaults), checkpoints beside or under it: valid."""
    text = _with(BASE, "training", 'checkpoint_dir = "./out/data/../checkpoints"')
    res = cli(tmp_path, "validate", str(write(tmp_path, text)))
    assert res.returncode == 0, res.stdout + res.stderr


# --------------------------------------------------------------------------- bad TOML of every kind
BAD_TOML = [
    # (section, line, needles)
    ("training", "epochs = ", ["not valid TOML", "line"]),
    ("bogus", None, ["[bogus]", "unknown section"]),
    ("training", "epoch = 3", ["training.epoch", "did you mean 'epochs'"]),
    ("hidden_states", "prot = 8000", ["hidden_states.prot", "did you mean 'port'"]),
    ("training", 'epochs = "three"', ["training.epochs", "expected an integer"]),
    ("training", "save_best = 1", ["training.save_best", "true or false"]),
    ("data", 'sources = "sharegpt"', ["data.sources", "expected a list of strings"]),
    ("training", 'mode = "onlien"', ["training.mode", "'online'"]),
    ("hidden_states", 'engine = "tgi"', ["hidden_states.engine", "'vllm'"]),
    ("training", 'scheduler = "step"', ["training.scheduler", "'cosine'"]),
    ("training", "epochs = -1", ["training.epochs", "greater than 0"]),
    ("training", "lr = -0.1", ["training.lr", "greater than 0"]),
    ("hidden_states", "port = 70000", ["hidden_states.port", "1024..65535"]),
    ("data", "sources = []", ["data.sources", "add 'sharegpt'"]),
    ("training", "gpus = [-1]", ["training.gpus", ">= 0"]),
    ("hidden_states", 'gpus = ["a"]', ["hidden_states.gpus[0]", "expected an integer"]),
    ("hidden_states", "gpus = [0, 0]", ["hidden_states.gpus", "use [0]"]),
    ("training", "val_split = 1.5", ["training.val_split", "use e.g. 0.1"]),
    ("hidden_states", "target_layer_ids = [2, 2, 8]", ["hidden_states.target_layer_ids"]),
    ("hidden_states", "target_layer_ids = [2, 99]", ["hidden_states.target_layer_ids"]),
    ("hidden_states", "target_layer_ids = [2, 4, 7]", ["hidden_states.target_layer_ids"]),
    ("model", 'target = ""', ["model.target", "set a HF model id"]),
    ("run", 'name = "a b/c"', ["run.name", "letters, digits"]),
]


@pytest.mark.fault("config")
@pytest.mark.parametrize("section,line,needles", BAD_TOML, ids=[f"{s}-{l}" for s, l, _ in BAD_TOML])
def test_bad_toml_of_every_kind(tmp_path, section, line, needles):
    text = BASE + "\n[bogus]\nx = 1\n" if line is None else _with(BASE, section, line)
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, *needles, f"{p}:")
    if line is not None and "not valid TOML" not in needles:
        assert f"{p}:{line_of(text, line.split('=')[0].strip(), section)}" in res.stdout + res.stderr


@pytest.mark.fault("config")
def test_overlapping_roles_need_allow_gpu_sharing(tmp_path):
    text = _with(_with(BASE, "training", "gpus = [0]"), "hidden_states", "gpus = [0]")
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, "training.gpus", "allow_gpu_sharing",
                         f"{p}:{line_of(text, 'gpus = [0]', 'training')}")


@pytest.mark.fault("config")
def test_missing_target_section(tmp_path):
    text = BASE.replace('[model]\ntarget = "builtin:tiny-qwen3"\n', "")
    p = write(tmp_path, text)
    res = cli(tmp_path, "validate", str(p))
    assert_clean_failure(res, "model.target", "set a HF model id", f"{p}:")
