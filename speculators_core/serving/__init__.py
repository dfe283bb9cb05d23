"""Stage 2: the hidden-states servers. `engines` is the registry of server engines (vLLM, hf)."""
