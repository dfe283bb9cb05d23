"""The hf engine's own behaviour (errors, SIGTERM) and the vLLM launcher's command (dry run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from speculators_core import launch_vllm
from speculators_core.serving.vllm import CPU_CONNECTOR_MODULE, package_root
from tests.vllm_fixtures import REPO, free_port, start_server, stop_server, wait_health


def test_hf_server_rejects_bad_requests(hf_hidden_states_server):
    s = hf_hidden_states_server
    model = httpx.get(s.url + "/models").json()["data"][0]["id"]
    post = lambda body: httpx.post(s.url + "/completions", json=body, timeout=30)  # noqa: E731
    r = post({"model": model, "prompt": [1, 2, 99999], "max_tokens": 1})
    assert r.status_code == 400 and "out of vocabulary" in r.json()["error"]["message"]
    r = post({"model": "other", "prompt": [1, 2], "max_tokens": 1})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"]
    r = post({"model": model, "prompt": [], "max_tokens": 1})
    assert r.status_code == 400 and "token ids" in r.json()["error"]["message"]
    assert os.listdir(s.storage_dir) == []


def test_hf_server_bad_layer_ids_fail_before_loading(tiny_target, tmp_path):
    r = subprocess.run([sys.executable, "-m", "speculators_core.hf_server", str(tiny_target), "--port", "1",
                        "--hidden-states-path", str(tmp_path), "--target-layer-ids", "2", "4", "4", "8"],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "duplicated layer id(s) [4]" in r.stderr and "fix: use unique ids" in r.stderr


def test_hf_server_stops_cleanly_on_sigterm(tiny_target, tmp_path):
    port = free_port()
    log = tmp_path / "hf.log"
    proc = start_server([sys.executable, "-m", "speculators_core.hf_server", str(tiny_target), "--port", str(port),
                         "--hidden-states-path", str(tmp_path / "hs")], log)
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, 120, log)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - t0 < 10
        assert "hf_server: stopping" in log.read_text()
    finally:
        stop_server(proc)


def _dry(tiny_target, *extra, env=None):
    argv = [str(tiny_target), "--hidden-states-path", "/tmp/x-hs", "--dry-run", *extra]
    return launch_vllm.build(argv, env if env is not None else {"CUDA_VISIBLE_DEVICES": ""})


def test_launcher_builds_the_vllm_command(tiny_target):
    cmd, env, storage = _dry(tiny_target, "--python", "/opt/vllm/bin/python", "--", "--port", "8123",
                             "--max-model-len", "512")
    assert cmd[:4] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model"]
    spec = json.loads(cmd[cmd.index("--speculative-config") + 1])
    assert spec["method"] == "extract_hidden_states" and spec["num_speculative_tokens"] == 1
    assert spec["draft_model_config"]["hf_config"]["eagle_aux_hidden_state_layer_ids"] == [2, 4, 5, 8]  # default
    kv = json.loads(cmd[cmd.index("--kv-transfer-config") + 1])
    assert kv["kv_connector"] == "CPUHiddenStatesConnector" and kv["kv_connector_module_path"] == CPU_CONNECTOR_MODULE
    assert kv["kv_connector_extra_config"] == {"shared_storage_path": "/tmp/x-hs"} and storage == "/tmp/x-hs"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd.count("--port") == 1
    # chunked prefill stays at vLLM's default (the connector no longer needs it off; forcing it off
    # aborts start-up when a user lowers --max-num-batched-tokens)
    assert not any("chunked-prefill" in a for a in cmd) and cmd[-4:] == ["--port", "8123", "--max-model-len", "512"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == package_root()
    assert os.path.isdir(os.path.join(package_root(), "speculators_core", "vllm_plugins"))


def test_launcher_respects_user_host_and_stock_connector(tiny_target):
    cmd, env, _ = _dry(tiny_target, "--connector", "stock", "--target-layer-ids", "1", "3", "8", "--",
                       "--host=0.0.0.0")
    assert "--host" not in cmd and "--host=0.0.0.0" in cmd
    kv = json.loads(cmd[cmd.index("--kv-transfer-config") + 1])
    assert kv["kv_connector"] == "ExampleHiddenStatesConnector" and "kv_connector_module_path" not in kv
    assert "PYTHONPATH" not in env
    assert '"eagle_aux_hidden_state_layer_ids":[1,3,8]' in cmd[cmd.index("--speculative-config") + 1]


@pytest.mark.parametrize("ids,msg", [(["2", "4", "4", "8"], "duplicated"), (["2", "4", "7"], "last id must be"),
                                     (["2", "9"], "out of range")])
def test_launcher_rejects_bad_layer_ids(tiny_target, ids, msg, capsys):
    with pytest.raises(SystemExit) as e:
        _dry(tiny_target, "--target-layer-ids", *ids)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_launcher_dry_run_prints_the_command(tiny_target):
    r = subprocess.run([sys.executable, "-m", "speculators_core.launch_vllm", str(tiny_target), "--dry-run", "--",
                        "--port", "9"], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("launch_vllm: PYTHONPATH=") and "vllm.entrypoints.openai.api_server" in r.stdout
    assert "CPUHiddenStatesConnector" in r.stdout


@pytest.mark.vllm
def test_cpu_connector_refuses_untested_vllm_versions(vllm_python_path):
    code = ("from speculators_core.vllm_plugins import cpu_hidden_states_connector as c\n"
            "try:\n    c.check_vllm_version('0.99.0')\nexcept RuntimeError as e:\n    print('REFUSED', e)\n")
    r = subprocess.run([vllm_python_path, "-c", code], capture_output=True, text=True, timeout=180, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=package_root()))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "REFUSED" in r.stdout and "tested with vLLM 0.32.0" in r.stdout and "0.99.0" in r.stdout
