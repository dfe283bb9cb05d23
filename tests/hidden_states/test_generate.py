"""python -m speculators_core.generate against the hf engine: fills the cache, resumes, reports bad rows."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from speculators_core.hidden_states import cache_path, load_cached
from tests.prepare.conftest import style_tokenizer, write_jsonl  # noqa: F401 (fixtures)
from tests.vllm_fixtures import REPO


def _dataset(path, rows):
    from datasets import Dataset

    Dataset.from_dict({"input_ids": rows, "loss_mask": [[1] * len(r) for r in rows],
                       "seq_len": [len(r) for r in rows]}).save_to_disk(str(path))


def _generate(server, data, cache, *extra):
    argv = [sys.executable, "-m", "speculators_core.generate", "--data-path", str(data),
            "--hidden-states-path", str(cache), "--vllm-endpoint", server.url,
            "--hidden-states-storage", str(server.storage_dir), "--max-in-flight", "4", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def test_generate_fills_the_cache_resumes_and_reports_bad_rows(hf_hidden_states_server, tmp_path):
    server = hf_hidden_states_server
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(3, 2000, (int(n),), generator=g).tolist() for n in torch.randint(5, 60, (12,), generator=g)]
    rows[9] = list(range(3, 3 + 600))  # longer than the server's --max-model-len 512
    data, cache = tmp_path / "data", tmp_path / "cache"
    _dataset(data, rows)

    r = _generate(server, data, cache, "--max-samples", "8")
    assert r.returncode == 0, r.stderr
    assert "8 rows, 0 already cached, 8 to generate" in r.stdout
    assert sorted(os.listdir(cache)) == sorted(cache_path(cache, i).name for i in range(8))
    for i in (0, 7):
        assert load_cached(cache, i).token_ids.tolist() == rows[i]

    r = _generate(server, data, cache)
    assert r.returncode == 1
    assert "12 rows, 8 already cached, 4 to generate" in r.stdout
    assert "row 9:" in r.stderr and "maximum context length" in r.stderr and "run again" in r.stderr
    assert not cache_path(cache, 9).exists() and all(cache_path(cache, i).exists() for i in (8, 10, 11))
    assert os.listdir(server.storage_dir) == []


def test_generate_needs_storage_dir(tmp_path):
    r = subprocess.run([sys.executable, "-m", "speculators_core.generate", "--data-path", str(tmp_path),
                        "--hidden-states-path", str(tmp_path / "c"), "--vllm-endpoint", "http://127.0.0.1:1/v1"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "--hidden-states-storage is required" in r.stderr


# -- the cache records the prepared dataset it was filled for ---------------------------------------------
def _gen_main(data, cache, *extra):
    from speculators_core.generate import main

    return main(["--data-path", str(data), "--hidden-states-path", str(cache), "--vllm-endpoint",
                 "http://127.0.0.1:1/v1", "--hidden-states-storage", str(data.parent / "storage"), *extra])


def test_generate_refuses_a_cache_made_for_other_data(style_tokenizer, write_jsonl, tmp_path, capsys):
    from tests.prepare.test_prepare import GOOD, run

    tok, out = style_tokenizer("chatml"), tmp_path / "out"
    run(tok, [write_jsonl(GOOD)], out)
    cache = out / "hidden_states"
    assert _gen_main(out, cache, "--max-samples", "0") == 0  # nothing to do, but the cache is claimed
    assert (cache / "cache_manifest.json").exists()
    cache_path(cache, 0).write_bytes(b"row 0 of the first preparation")
    assert _gen_main(out, cache, "--max-samples", "0") == 0  # same dataset: fine
    run(tok, [write_jsonl(GOOD[:2], "other.jsonl")], out, overwrite=True)  # other data, same output
    capsys.readouterr()
    assert _gen_main(out, cache) == 2
    err = capsys.readouterr().err
    assert "another prepared dataset" in err and str(cache) in err and str(out) in err and "delete" in err
    assert cache_path(cache, 0).read_bytes() == b"row 0 of the first preparation"  # untouched


def test_generate_refuses_an_old_cache_without_manifest(style_tokenizer, write_jsonl, tmp_path, capsys):
    from tests.prepare.test_prepare import GOOD, run

    tok, out = style_tokenizer("chatml"), tmp_path / "out"
    run(tok, [write_jsonl(GOOD)], out)
    cache = out / "hidden_states"
    cache.mkdir()
    cache_path(cache, 0).write_bytes(b"made by an older version")
    assert _gen_main(out, cache) == 2
    err = capsys.readouterr().err
    assert "cache_manifest.json" in err and "older version" in err and "delete" in err
