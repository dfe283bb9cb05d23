"""The pre-flight check (`speculators-tui doctor`, speculators_core/doctor.py) and the loss-mask view
(`speculators-tui data show`, speculators_core/data/mask_view.py) on the demo's real prepared data."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core import doctor
from speculators_core.config.presets import find_preset
from speculators_core.data.mask_view import CLOSE, OPEN, row_view
from speculators_core.plan.stages import Stage

REPO = Path(__file__).resolve().parents[2]
DEMO_CHAT = REPO / "speculators_core" / "builtin" / "assets" / "demo_chat.jsonl"
RECORDED = REPO / "tests" / "data" / "recorded_run"


def demo_conversations() -> dict[str, list[list[dict]]]:
    """First user message -> the chats starting with it (role/content messages), from the demo data."""
    out = {}
    for line in DEMO_CHAT.read_text().splitlines():
        row = json.loads(line)
        if "messages" in row:
            msgs = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        else:
            roles = {"human": "user", "gpt": "assistant", "system": "system"}
            msgs = [{"role": roles[m["from"]], "content": m["value"]} for m in row["conversations"]]
        first_user = next(m["content"] for m in msgs if m["role"] == "user")
        out.setdefault(first_user, []).append(msgs)
    return out


def matches(marked: list[str], msgs: list[dict], truncated: bool) -> bool:
    expected = [m["content"] + "<|im_end|>" for m in msgs if m["role"] == "assistant" and m["content"]]
    if marked == expected:
        return True
    # a row cut at seq_length keeps its first tokens: the last trained span is a prefix of its turn
    n = len(marked)
    return truncated and 0 < n <= len(expected) and marked[:-1] == expected[:n - 1] and expected[n - 1].startswith(marked[-1])


def masked_runs(ids: list[int], mask: list[int]) -> list[list[int]]:
    runs, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def test_data_show_highlights_exactly_the_assistant_tokens(demo_prepared, capsys):
    """`data show` (not a TTY: ⟦ ⟧ markers) on the demo's prepared data: the marked text is exactly
    the row's loss_mask = 1 tokens, and those are exactly the assistant turns (+ their <|im_end|>)."""
    import pyarrow as pa
    from tokenizers import Tokenizer

    from speculators_tui.cli import main

    manifest = json.loads((demo_prepared / "prepare_manifest.json").read_text())
    tok = Tokenizer.from_file(str(Path(manifest["inputs"]["model"]) / "tokenizer.json"))
    state = json.loads((demo_prepared / "state.json").read_text())
    table = pa.concat_tables([pa.ipc.open_stream(pa.memory_map(str(demo_prepared / f["filename"]))).read_all()
                              for f in state["_data_files"]])
    chats = demo_conversations()
    assert table.num_rows == sum(len(v) for v in chats.values()) == 220
    for row in list(range(0, 220, 9)) + [219]:
        assert main(["data", "show", str(demo_prepared), "--row", str(row)]) == 0
        out = capsys.readouterr().out
        header, text = out.split("\n", 1)
        ids = table.column("input_ids")[row].as_py()
        mask = table.column("loss_mask")[row].as_py()
        share = 100 * sum(mask) / len(mask)
        assert header == (f"{demo_prepared}: row {row} of 220: {len(ids)} tokens, {sum(mask)} trained "
                          f"({share:.1f}%); trained tokens are between ⟦ and ⟧")
        marked = re.findall(f"{OPEN}(.*?){CLOSE}", text, flags=re.S)
        # 1. the highlighted text is the row's loss mask, token for token
        assert marked == [tok.decode(r, skip_special_tokens=False) for r in masked_runs(ids, mask)]
        # 2. ... and that is exactly the assistant text of the chat this row was prepared from
        plain = text.replace(OPEN, "").replace(CLOSE, "")
        assert plain[:-1] == tok.decode(ids, skip_special_tokens=False)  # print's newline
        first_user = re.search(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", plain, flags=re.S).group(1)
        truncated = len(ids) == 1024  # the demo's seq_length
        assert any(matches(marked, msgs, truncated) for msgs in chats[first_user]), (row, marked)


def test_data_show_rows_tokens_and_errors(demo_prepared, tmp_path, capsys):
    from speculators_tui.cli import main

    view = row_view(demo_prepared, -1)
    assert view.row == 219 and view.rows == 220
    assert 0 < view.share < 1 and view.trained == sum(view.loss_mask)
    assert "".join(t for t, _ in view.tokens).startswith("<|im_start|>")
    assert main(["data", "show", str(demo_prepared), "--row", "3", "--tokens"]) == 0
    out = capsys.readouterr().out.split("\n", 1)[1]
    assert out.startswith("[<|im_start|>][us][er][\n][Why]")  # every token bracketed: ⟦trained⟧ or [not]
    assert main(["data", "show", str(demo_prepared), "--row", "220"]) == 2
    err = capsys.readouterr().err
    assert "--row 220: the dataset has 220 rows (0..219)" in err and "fix: give a row between 0 and 219" in err
    assert main(["data", "show", str(tmp_path)]) == 2
    assert "no prepared dataset here" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ doctor
def by_name(checks) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_doctor_on_the_demo_preset_and_a_recorded_run(capsys):
    from speculators_tui.cli import main

    assert main(["doctor", "tiny-cpu-demo", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert [(n, c["status"]) for n, c in checks.items()] == [
        ("target", "pass"), ("layer ids", "pass"), ("server vllm", "skip"), ("chat", "pass"), ("disk", "skip")]
    assert checks["layer ids"]["detail"] == "server and trainer both use [2, 4, 5, 8] (target has 8 layers)"
    assert "the loss mask covers all 1 assistant turn(s) and no user text" in checks["chat"]["detail"]
    # a recorded run directory (its run.toml): the same checks, as text
    assert main(["doctor", str(RECORDED)]) == 0
    out = capsys.readouterr().out
    assert "✓ target" in out and "✓ chat" in out and "ready: every check passed" in out


def test_doctor_fails_with_the_fix(tmp_path, tiny_target, monkeypatch):
    cfg = find_preset("tiny-cpu-demo").load()
    # the server's Python: missing, or without vLLM, for the vllm engine
    cfg.hidden_states.engine = "vllm"
    cfg.hidden_states.python = str(tmp_path / "nope" / "python")
    c = doctor.check_server_python(cfg)
    assert c.status == "fail" and "does not exist" in c.detail and "environment that has vLLM" in c.fix
    cfg.hidden_states.python = sys.executable  # the project's venv has no vllm
    c = doctor.check_server_python(cfg)
    assert c.status == "fail" and "has no vllm package" in c.detail and c.fix.startswith("pip install vllm")
    # layer ids that differ between the server and the trainer
    server = Stage("server", ["python", "-m", "x", "--target-layer-ids", "2", "4", "6", "8"], kind="server")
    train = Stage("train", ["python", "-m", "y", "--target-layer-ids", "2", "4", "5", "8"])
    target, _ = doctor.check_target(cfg)[1], None
    c = doctor.check_layer_ids(cfg, target, [server, train])
    assert c.status == "fail" and "extracts layers [2, 4, 6, 8] but the trainer expects [2, 4, 5, 8]" in c.detail
    vllm_like = Stage("server", ["vllm", "--speculative-config", json.dumps(
        {"draft_model_config": {"hf_config": {"eagle_aux_hidden_state_layer_ids": [2, 4, 5, 8]}}})], kind="server")
    assert doctor.check_layer_ids(cfg, target, [vllm_like, train]).status == "pass"
    # a chat template that rewrites the assistant text: the loss mask cannot cover it
    bad = tmp_path / "shouting-target"
    shutil.copytree(tiny_target, bad, ignore=shutil.ignore_patterns("*.safetensors"))
    tpl = (bad / "chat_template.jinja").read_text()
    (bad / "chat_template.jinja").write_text(tpl.replace("message.content", "message.content | upper")
                                             .replace("message['content']", "message['content'] | upper"))
    assert "upper" in (bad / "chat_template.jinja").read_text()
    cfg2 = find_preset("tiny-cpu-demo").load()
    cfg2.model.target = str(bad)
    c = doctor.check_chat_template(cfg2)
    assert c.status == "fail" and "the loss mask covers no assistant text" in c.detail and "verbatim" in c.fix


def test_doctor_disk_for_the_hybrid_cache(demo_prepared, tmp_path, monkeypatch):
    import collections

    cfg = find_preset("tiny-cpu-demo").load()
    cfg.training.mode = "hybrid"
    cfg.data.output = str(demo_prepared)
    cfg.training.hidden_states_cache = str(tmp_path / "cache")
    c = doctor.run_checks(cfg)[-1]
    manifest = json.loads((demo_prepared / "prepare_manifest.json").read_text())
    tokens = round(manifest["summary"]["mean_length"] * manifest["summary"]["rows_kept"])
    per_token = 4 * 256 * 4 + 8  # 4 layers x hidden 256 x float32, + the token id
    assert c.name == "disk" and c.status == "pass"
    assert f"({tokens:,} prepared tokens, {per_token / 1024:.1f} KB/token)" in c.detail
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1000 * 1024))
    c = doctor.check_disk(cfg, doctor.check_target(cfg)[1], None)
    assert c.status == "fail" and "1000.0 KB free" in c.detail and "hidden_states_cache" in c.fix
    cfg.data.output = str(tmp_path / "not-prepared")
    c = doctor.check_disk(cfg, doctor.check_target(cfg)[1], None)
    assert c.status == "warn" and "once the data is prepared" in c.detail


@pytest.mark.vllm
def test_doctor_finds_vllm_in_the_servers_python(vllm_python_path):
    cfg = cfgmod.RunConfig()
    cfg.hidden_states.engine = "vllm"
    cfg.hidden_states.python = str(vllm_python_path)
    c = doctor.check_server_python(cfg)
    assert c.status == "pass" and re.search(r"has vllm \d+\.\d+", c.detail), c
