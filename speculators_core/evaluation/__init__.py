"""Stage 4, measuring a drafter (`python -m speculators_core.evaluate`): checkpoints and prompts
(inputs.py), the in-process `hf` engine (hf_engine.py), the `vllm` engine (vllm_engine.py), and
eval.json / metrics records / the best-checkpoint choice (results.py)."""
