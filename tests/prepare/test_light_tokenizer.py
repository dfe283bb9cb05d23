"""Loading tokenizers without transformers (`data/light_tokenizer.py`, `data/chat_env.py`): the same
attributes, the same rendered text and the same prepared dataset as AutoTokenizer, and no
transformers/torch import before a first run's workers start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core.data import light_tokenizer
from speculators_core.data.render import ChatRenderer
from tests.prepare import chat_templates

ROOT = Path(__file__).resolve().parents[2]

SYSTEMS = [None, "You are a helpful assistant.", "  padded system \n", "Système: réponds en français. 日本語も可。"]
USERS = ["Hi", "What is 2 + 2?", "  leading and trailing spaces  ", "multi\nline\n\nquestion?", "emoji 🚀 and ünïcödé",
         "<b>html & 'quotes' \"double\"</b>", "tab\there", "中文问题：今天天气怎么样？"]
ASSISTANTS = ["Hello!", "It is 4.", "\nstarts with a newline", "ends with newline\n", "code:\n```py\nprint(1)\n```",
              "<think>\nreasoning here\n</think>\n\nThe answer.", "Ça va très bien, merci. 🙂", "x" * 300, ""]


def conversations(n: int = 60) -> list[list[dict]]:
    import random

    rng = random.Random(0)
    out = []
    for k in range(n):
        msgs = []
        system = SYSTEMS[k % len(SYSTEMS)]
        if system is not None:
            msgs.append({"role": "system", "content": system})
        for _ in range(1 + k % 4):
            msgs.append({"role": "user", "content": rng.choice(USERS)})
            msgs.append({"role": "assistant", "content": rng.choice(ASSISTANTS)})
        if k % 7 == 3:  # roles that do not alternate (strict templates raise)
            msgs.append({"role": "user", "content": "again"})
            msgs.append({"role": "user", "content": "and again"})
        out.append(msgs)
    return out


def _dirs(style_tokenizer, tiny_target) -> list[Path]:
    return [style_tokenizer(name) for name in chat_templates.STYLES] + [Path(tiny_target)]


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # the template's raise_exception, NoAssistantSpan...
        return ("error", type(exc).__name__, str(exc))


def test_same_attributes_as_autotokenizer(style_tokenizer, tiny_target):
    from transformers import AutoTokenizer

    for d in _dirs(style_tokenizer, tiny_target):
        light, why = light_tokenizer.load(d)
        assert light is not None, f"{d}: {why}"
        ref = AutoTokenizer.from_pretrained(str(d))
        assert type(ref).__name__ == "TokenizersBackend"
        assert light.special_tokens_map == ref.special_tokens_map
        assert light.all_special_tokens == ref.all_special_tokens
        assert len(light) == len(ref)
        assert light.get_chat_template() == ref.get_chat_template()
        assert light.backend_tokenizer.to_str() == ref.backend_tokenizer.to_str()
        assert ({k: repr(v) for k, v in light.added_tokens_decoder.items()}
                == {k: repr(v) for k, v in ref.added_tokens_decoder.items()})


def test_chat_templates_render_byte_identical(style_tokenizer, tiny_target):
    """Every test template and the demo target's, on many chats: the renderer's text and spans are
    the same with either tokenizer, and the text is transformers' apply_chat_template's."""
    from transformers import AutoTokenizer

    chats = conversations()
    for d in _dirs(style_tokenizer, tiny_target):
        light, _ = light_tokenizer.load(d)
        ref = AutoTokenizer.from_pretrained(str(d))
        r_light, r_ref = ChatRenderer(light), ChatRenderer(ref)
        assert r_light._light and not r_ref._light
        assert r_light.end_markers == r_ref.end_markers and r_light.template_kwargs == r_ref.template_kwargs
        for msgs in chats:
            got, want = _outcome(lambda: r_light.render(msgs)), _outcome(lambda: r_ref.render(msgs))
            assert got == want, (d.name, msgs)
            for agp in (False, True):
                text = _outcome(lambda: r_light._compiled.render(
                    messages=msgs, tools=None, documents=None, add_generation_prompt=agp, **r_light.template_kwargs))
                ref_text = _outcome(lambda: ref.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp))
                assert text == ref_text, (d.name, msgs, agp)


def test_jinja_environment_extras_match_transformers():
    """tojson (no HTML escaping, its options), raise_exception, loop controls, trim/lstrip blocks."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    from speculators_core.data.chat_env import compile_template

    template = (
        "{%- for m in messages %}\n  {% if loop.index > 3 %}{% break %}{% endif %}"
        "{{ m | tojson }}|{{ m | tojson(indent=2, sort_keys=true) }}\n"
        "{% if m.content == 'boom' %}{{ raise_exception('no ' + m.role) }}{% endif %}{% endfor %}"
        "{{ bos_token }}{{ strftime_now('%Y') }}"
    )
    msgs = [{"role": "user", "content": "<a & 'b'> ü 中"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": "y"}, {"role": "user", "content": "z"}]
    kw = dict(messages=msgs, tools=None, documents=None, add_generation_prompt=False, bos_token="<s>")
    assert compile_template(template).render(**kw) == _compile_jinja_template(template).render(**kw)
    bad = dict(kw, messages=[{"role": "user", "content": "boom"}])
    with pytest.raises(Exception) as a:
        compile_template(template).render(**bad)
    with pytest.raises(Exception) as b:
        _compile_jinja_template(template).render(**bad)
    assert (type(a.value), str(a.value)) == (type(b.value), str(b.value))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_falls_back_when_it_cannot_vouch(style_tokenizer, tmp_path):
    src = style_tokenizer("chatml")
    assert light_tokenizer.load(src)[0] is not None
    assert light_tokenizer.load(tmp_path / "nowhere")[0] is None

    def variant(name, edit_cfg=None, files=None, remove=None):
        d = _copy(src, tmp_path / name)
        if edit_cfg:
            cfg = json.loads((d / "tokenizer_config.json").read_text())
            edit_cfg(cfg)
            (d / "tokenizer_config.json").write_text(json.dumps(cfg))
        for fname, text in (files or {}).items():
            (d / fname).write_text(text)
        if remove:
            (d / remove).unlink()
        return light_tokenizer.load(d)

    cases = {
        "remote": dict(edit_cfg=lambda c: c.update(auto_map={"AutoTokenizer": [None, "x.Tok"]})),
        "class": dict(edit_cfg=lambda c: c.update(tokenizer_class="Qwen2Tokenizer")),
        "unknown_key": dict(edit_cfg=lambda c: c.update(add_prefix_space=True)),
        "model_token": dict(edit_cfg=lambda c: c.update(image_token="<|im_start|>")),
        "named_templates": dict(edit_cfg=lambda c: c.update(chat_template=[{"name": "default", "template": "x"}]),
                                remove="chat_template.jinja"),
        "new_special": dict(edit_cfg=lambda c: c.update(bos_token="<|not_in_vocab|>")),
        "split": dict(edit_cfg=lambda c: c.update(split_special_tokens=True)),
        "no_json": dict(remove="tokenizer.json"),
        "template_json": dict(files={"chat_template.json": "{}"}),
        "config_remote": dict(files={"config.json": json.dumps({"model_type": "x", "auto_map": {}})}),
    }
    for name, kw in cases.items():
        tok, why = variant(name, **kw)
        assert tok is None and why, name


def _prepare_run(cmd_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speculators_core.prepare", *cmd_args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_prepared_dataset_identical_with_and_without_light_path(tiny_target, tmp_path):
    import datasets
    import torch

    outs = {}
    for light in ("1", "0"):
        env = {**os.environ, "SPECULATORS_TUI_CACHE": str(tmp_path / f"cache-{light}"),
               "SPECULATORS_PREPARE_LIGHT_TOKENIZER": light}
        out = tmp_path / f"out-{light}"
        p = _prepare_run(["--model", str(tiny_target), "--data", "builtin:demo-chat", "--output", str(out),
                          "--num-preprocessing-workers", "2", "--seq-length", "512"], env)
        assert p.returncode == 0, p.stderr
        assert ("loaded with tokenizers" in p.stdout) == (light == "1"), p.stdout
        outs[light] = out
    a, b = outs["1"], outs["0"]
    arrow = sorted(f.relative_to(a) for f in a.rglob("*.arrow"))
    assert arrow and arrow == sorted(f.relative_to(b) for f in b.rglob("*.arrow"))
    for f in arrow:
        assert (a / f).read_bytes() == (b / f).read_bytes()
    for name in ("dataset_info.json", "state.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    fa = torch.load(a / "token_freq.pt", weights_only=True)
    assert fa == torch.load(b / "token_freq.pt", weights_only=True) and fa
    ma, mb = (json.loads((x / "prepare_manifest.json").read_text()) for x in (a, b))
    assert ma["fingerprint"] == mb["fingerprint"] and ma["inputs"] == mb["inputs"]
    da, db = datasets.load_from_disk(str(a)), datasets.load_from_disk(str(b))
    assert da["input_ids"] == db["input_ids"] and da["loss_mask"] == db["loss_mask"]


_PROBE = r"""
import sys
from speculators_core import prepare
from speculators_core.data import chunk_pool
seen = {}
orig = chunk_pool.ChunkPool.__init__
def init(self, *a, **k):
    seen["modules"] = sorted(m for m in ("torch", "transformers") if m in sys.modules)
    return orig(self, *a, **k)
chunk_pool.ChunkPool.__init__ = init
code = prepare.main(sys.argv[1:])
print("MODULES-AT-WORKER-START", seen.get("modules"))
sys.exit(code)
"""


def test_first_run_imports_neither_torch_nor_transformers_before_workers(tiny_target, tmp_path):
    env = {**os.environ, "SPECULATORS_TUI_CACHE": str(tmp_path / "empty-cache")}
    p = subprocess.run([sys.executable, "-c", _PROBE, "--model", str(tiny_target), "--data", "builtin:demo-chat",
                        "--output", str(tmp_path / "out"), "--num-preprocessing-workers", "2"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "tokenizer cache: stored" in p.stdout, p.stdout  # a first run: the cache was empty
    assert "MODULES-AT-WORKER-START []" in p.stdout, p.stdout


def test_our_incorrect_hub_class_set_covers_transformers():
    """transformers ignores the hub's tokenizer_class for these model types (its own class rebuilds the
    normalizer/pre-tokenizer); our copy must hold every one the installed transformers lists."""
    from transformers.models.auto.tokenization_auto import MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS as theirs

    assert set(theirs) <= set(light_tokenizer.MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS), \
        sorted(set(theirs) - set(light_tokenizer.MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS))


def test_falls_back_for_model_types_transformers_gives_their_own_tokenizer(style_tokenizer, tmp_path):
    d = _copy(style_tokenizer("chatml"), tmp_path / "m")
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert light_tokenizer.load(d)[0] is not None
    for model_type in ("qwen2", "deepseek_v3", "phi3", "internlm2"):
        (d / "config.json").write_text(json.dumps({"model_type": model_type}))
        tok, why = light_tokenizer.load(d)
        assert tok is None and model_type in why, (model_type, why)
