"""The command-line flags of every stage, in one place.

Each stage module (`python -m speculators_core.<stage>`) parses its argv with the parser built
here, and `plan.stages.build_stages` writes argv for exactly these flags, so an exported script and the
stages can never disagree (a test parses every built argv with its stage's parser). Flag names and
meanings follow the reference tutorial's scripts (prepare_data.py, launch_vllm.py, train.py).
This module imports only the standard library.
"""

from __future__ import annotations

import argparse

from speculators_core import paths, precision  # stdlib only at import time


def _parser(prog: str, description: str, **kw) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, **kw)


def _add_bool(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help)


class _LayerIds(argparse.Action):
    """Layer ids written any way a user copies them: `2 18 33`, `2,18,33` or `[2, 18, 33]` (as
    run.toml and the wizard show them)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        ids = []
        for token in values:
            for part in token.replace("[", " ").replace("]", " ").replace(",", " ").split():
                try:
                    ids.append(int(part))
                except ValueError:
                    parser.error(f"{option_string}: expected whole numbers such as `2 18 33` or `2,18,33`, "
                                 f"got {part!r}")
        if not ids:
            parser.error(f"{option_string}: give at least one layer id, e.g. `2 18 33 36`")
        setattr(namespace, self.dest, ids)


def _dtype(text: str) -> str:
    try:
        return precision.normalise(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_dtype(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--dtype", type=_dtype, default="auto", metavar="{auto,bf16,fp16,fp32}",
                   help=f"{what}; auto = bf16 on GPUs and CPUs with native bf16 (AVX512_BF16/AMX), "
                        f"fp32 on other CPUs (where bf16 is emulated and several times slower)")


def prepare_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.prepare",
                "Stage 1: render chat data with the target's chat template, tokenise, build the "
                    "assistant-only loss mask and token_freq.pt, and save a datasets directory.")
    p.add_argument("--model", required=True, help="target model: HF id, local directory, or builtin:tiny-qwen3")
    p.add_argument("--data", action="append", required=True,
                   help="sharegpt, ultrachat, builtin:demo-chat, or a .json/.jsonl file or directory (repeatable)")
    p.add_argument("--output", required=True, help="output directory (datasets format + token_freq.pt)")
    p.add_argument("--max-samples", type=int, default=None, help="keep at most this many samples")
    p.add_argument("--seq-length", type=int, default=8192, help="truncate samples to this many tokens")
    p.add_argument("--minimum-valid-tokens", type=int, default=None,
                   help="drop samples with fewer trainable (assistant) tokens than this")
    p.add_argument("--num-preprocessing-workers", type=int, default=8, help="worker processes for tokenising")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (deterministic order)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output prepared from other inputs")
    _add_bool(p, "trust-remote-code", False, "allow the tokenizer's custom code")
    p.add_argument("--exact-tokenizer", action="store_true",
                   help="tokenise every row with the tokenizer's encode_batch instead of the (checked, "
                        "same output, 2-4x faster) word encoder")
    return p


def launch_vllm_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.launch_vllm",
                "Start `vllm serve MODEL` with hidden-states extraction. Everything after `--` goes to vLLM.",
        usage="%(prog)s MODEL [--target-layer-ids ...] [--hidden-states-path DIR] [--dry-run] -- <vLLM args>")
    p.add_argument("model", help="target model: HF id, local directory, or builtin:tiny-qwen3")
    p.add_argument("--target-layer-ids", nargs="+", action=_LayerIds, default=None, metavar="ID",
                   help="layer ids to extract; last = L (default [2, L//2, L-3, L])")
    p.add_argument("--hidden-states-path", default=paths.default_hidden_states_dir(),
                   help="directory the server writes hidden-states files to (default: private to this user, "
                        "created 0700; an existing one must be yours and not writable by others)")
    p.add_argument("--connector", choices=("auto", "stock", "cpu"), default="auto",
                   help="hidden-states connector: stock vLLM one, the CPU-capable one, or auto (cpu without a GPU)")
    p.add_argument("--python", default=None, help="python of the venv that has vLLM (default: this interpreter)")
    p.add_argument("--dry-run", action="store_true", help="print the vLLM command and exit")
    _add_bool(p, "trust-remote-code", False, "pass --trust-remote-code to vLLM")
    return p


def hf_server_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.hf_server",
                "Built-in hidden-states server (transformers forward) speaking vLLM's extraction protocol.")
    p.add_argument("model", help="target model: HF id, local directory, or builtin:tiny-qwen3")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--hidden-states-path", required=True, help="directory the server writes files to")
    p.add_argument("--target-layer-ids", nargs="+", action=_LayerIds, default=None, metavar="ID",
                   help="layer ids to extract; last = L (default [2, L//2, L-3, L])")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_dtype(p, "the model's dtype")
    p.add_argument("--max-model-len", type=int, default=None, help="reject prompts longer than this")
    p.add_argument("--max-batch-tokens", type=int, default=16384, help="tokens per batched forward")
    p.add_argument("--max-num-seqs", type=int, default=64,
                   help="sequences decoded together by /v1/chat/completions and multi-token completions")
    p.add_argument("--served-model-name", default=None)
    _add_api_key_env(p, "require this key (Authorization: Bearer) on /v1 requests")
    _add_bool(p, "trust-remote-code", False, "allow the model's custom code")
    return p


def _add_api_key_env(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help=f"the environment variable that holds the API key: {what} (the key never goes on "
                        f"the command line)")


def _client_args(p: argparse.ArgumentParser) -> None:
    _add_api_key_env(p, "sent as Authorization: Bearer to the hidden-states servers")
    p.add_argument("--vllm-endpoint", action="append", default=None,
                   help="hidden-states server URL, e.g. http://127.0.0.1:8000/v1 (repeatable: balanced)")
    p.add_argument("--hidden-states-storage", default=None,
                   help="the directory the server writes files to; a returned path outside it is refused")
    p.add_argument("--max-in-flight", type=int, default=8, help="hidden-states requests in flight")
    p.add_argument("--max-files-on-disk", type=int, default=16, help="hidden-states files on disk at once")
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds per hidden-states request")
    p.add_argument("--server-grace-period", type=float, default=300.0,
                   help="seconds the server may be unreachable before failing")


def generate_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.generate",
                "Fill the hidden-states cache for a prepared dataset (offline/hybrid). Resumable.")
    p.add_argument("--data-path", required=True, help="prepared dataset directory")
    p.add_argument("--hidden-states-path", required=True, help="cache directory (hs_<row>.safetensors)")
    p.add_argument("--max-samples", type=int, default=None)
    _client_args(p)
    return p


def regenerate_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.regenerate",
                "Stage 0: regenerate the assistant answers of chat data with the target (through "
                    "/v1/chat/completions), writing the messages plus the exact token ids (input_ids, "
                    "loss_mask) that prepare trains on. Append-only and resumable.")
    p.add_argument("--endpoint", action="append", required=True,
                   help="server URL, e.g. http://127.0.0.1:8000/v1 (repeatable: least in-flight first)")
    p.add_argument("--data", action="append", required=True,
                   help="sharegpt, ultrachat, builtin:demo-chat, or a .json/.jsonl file or directory (repeatable)")
    p.add_argument("--output", required=True, help="output .jsonl (one regenerated conversation per line)")
    p.add_argument("--max-samples", type=int, default=None, help="regenerate at most this many conversations")
    p.add_argument("--max-tokens", type=int, default=1024, help="tokens per generated answer at most")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0, help="row order (as prepare's) and sampling seed")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight over all endpoints")
    p.add_argument("--turns", choices=("all", "first"), default="all",
                   help="regenerate every assistant turn (later turns see the new answers), or only the first "
                        "(the conversation ends after it)")
    p.add_argument("--chat-template-kwargs", default=None, metavar="JSON",
                   help='passed to the chat template, e.g. \'{"enable_thinking": false}\' for Qwen3')
    p.add_argument("--retries", type=int, default=5, help="attempts per request before the row counts as failed")
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds per request")
    _add_bool(p, "resume", False, "continue an existing output: rows already written (by source) are skipped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--metrics-file", default=None,
                   help="also append progress records ({\"type\": \"regenerate\"}) to this JSONL file")
    _add_api_key_env(p, "sent as Authorization: Bearer to the servers")
    return p


def train_parser() -> argparse.ArgumentParser:
    p = _parser("torchrun --standalone --nproc_per_node N -m speculators_core.train",
                "Stage 3: train an EAGLE-3 drafter, fetching hidden states from the server on demand.")
    p.add_argument("--verifier-name-or-path", required=True, help="target model (HF id, dir, builtin:tiny-qwen3)")
    p.add_argument("--data-path", required=True, help="prepared dataset directory (stage 1 output)")
    p.add_argument("--save-path", required=True, help="checkpoint directory (<save>/<epoch>/, checkpoint_best)")
    p.add_argument("--draft-vocab-size", type=int, default=32000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--total-seq-len", type=int, default=8192, help="tokens per packed training row")
    p.add_argument("--num-layers", type=int, default=1, help="draft decoder layers")
    p.add_argument("--ttt-steps", type=int, default=3, help="test-time-training steps (speculative tokens)")
    p.add_argument("--on-missing", choices=("generate", "raise", "skip"), default="generate",
                   help="a row without cached hidden states: ask the server, fail, or skip it")
    p.add_argument("--on-generate", choices=("delete", "cache"), default="delete",
                   help="after using generated hidden states: delete them or keep them in the cache")
    p.add_argument("--hidden-states-path", default=None, help="hidden-states cache directory")
    p.add_argument("--target-layer-ids", nargs="+", action=_LayerIds, default=None, metavar="ID",
                   help="the server's layer ids (aux..., L); default from the target config")
    p.add_argument("--from-pretrained", default=None, help="start from this drafter checkpoint")
    _add_bool(p, "resume", False, "continue from the latest checkpoint in --save-path")
    _add_bool(p, "save-best", True, "keep checkpoint_best -> the epoch with the lowest validation loss")
    p.add_argument("--select-best-by", choices=("val_loss", "acceptance_length"), default="val_loss",
                   help="checkpoint_best: lowest validation loss, or highest replayed acceptance length")
    p.add_argument("--scheduler", choices=("linear", "cosine", "constant"), default="linear")
    p.add_argument("--warmup-ratio", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--val-split", type=float, default=0.1, help="share of rows held out for validation")
    p.add_argument("--noise", type=float, default=0.05, help="uniform noise on training aux hidden states")
    p.add_argument("--logger", choices=("none", "tensorboard", "wandb", "trackio"), default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_dtype(p, "compute dtype (autocast; checkpoints are bf16 either way)")
    p.add_argument("--run-dir", default=None, help="where metrics.jsonl is appended (default: --save-path)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (testing)")
    _add_bool(p, "trust-remote-code", False, "allow the model's custom code")
    _client_args(p)
    return p


def wait_health_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.wait_health",
                "Wait until servers answer GET /health with 200 (several URLs: every one, within one timeout).")
    p.add_argument("url", nargs="+", help="health URL(s), e.g. http://127.0.0.1:8000/health")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all of them")
    p.add_argument("--pid", type=int, default=None, help="fail early when this process exits")
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = _parser("python -m speculators_core.evaluate",
                "Stage 4: measure a drafter's acceptance length (and speedup) with greedy speculative decoding.")
    p.add_argument("--checkpoint", required=True,
                   help="a drafter checkpoint directory, or a training save directory (every epoch is measured)")
    p.add_argument("--prompts", required=True,
                   help="jsonl: rows with prompt_ids (token ids), or chat rows (messages / conversations), "
                        "or a prepared dataset directory (its held-out split, see --val-split)")
    p.add_argument("--output", default=None, help="eval.json to write (default: <checkpoint>/eval.json)")
    p.add_argument("--num-speculative-tokens", type=int, nargs="+", default=[3],
                   help="K, the draft length; several = a sweep")
    p.add_argument("--max-tokens", type=int, default=128, help="tokens generated per prompt")
    p.add_argument("--temperature", type=float, default=0.0, help="only 0 (greedy) is measured exactly")
    p.add_argument("--num-prompts", type=int, default=None, help="use the first N prompts")
    p.add_argument("--engine", choices=("vllm", "hf"), default="vllm")
    p.add_argument("--python", default=None, help="the vLLM venv's python (vllm engine)")
    p.add_argument("--endpoint", default=None, help="a vLLM already serving the drafter (http://HOST:PORT)")
    _add_bool(p, "baseline", False, "also measure the target alone (tokens/s) for the speedup")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="hf engine device")
    p.add_argument("--val-split", type=float, default=0.1, help="prepared dataset prompts: the held-out share")
    p.add_argument("--seed", type=int, default=0, help="prepared dataset prompts: the split's seed")
    p.add_argument("--metrics", default=None, help="append type \"eval\" records to this metrics.jsonl")
    p.add_argument("--select-best-by", choices=("val_loss", "acceptance_length"), default="val_loss",
                   help="with a save directory: acceptance_length re-points checkpoint_best at the best measured")
    p.add_argument("--vllm-arg", action="append", default=[], help="extra argument for vllm serve (repeatable)")
    p.add_argument("--reuse-epoch-results", action="store_true",
                   help="with a save directory: take an epoch's results from eval-epoch-<N>.json beside --output "
                        "(written while training ran) when it is newer than that checkpoint and has every K")
    return p


#: Stage module -> its parser. `commands.build_stages` must only emit flags these accept.
PARSERS = {
    "speculators_core.wait_health": wait_health_parser,
    "speculators_core.prepare": prepare_parser,
    "speculators_core.launch_vllm": launch_vllm_parser,
    "speculators_core.hf_server": hf_server_parser,
    "speculators_core.generate": generate_parser,
    "speculators_core.regenerate": regenerate_parser,
    "speculators_core.train": train_parser,
    "speculators_core.evaluate": evaluate_parser,
}


def extra_flags(parser_factory, values: dict[str, object]) -> list[str]:
    """Flags whose value differs from the stage parser's default, in the parser's spelling."""
    parser = parser_factory()
    defaults = {a.dest: a.default for a in parser._actions}
    out: list[str] = []
    for flag, value in values.items():
        dest = flag.lstrip("-").replace("-", "_")
        if defaults.get(dest) == value:
            continue
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{flag[2:]}")
        elif value is None or value == "":
            continue
        elif isinstance(value, list):
            out += [flag, *[str(v) for v in value]]
        else:
            out += [flag, num(value)]
    return out


def num(v: object) -> str:
    """Numbers as a person writes them: 1e-4 (not 0.0001), 0.9, 8192."""
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            mant, exp = f"{v:.12e}".split("e")
            mant = mant.rstrip("0").rstrip(".")
            return f"{mant}e{int(exp)}"
        return repr(v)
    return str(v)
