"""Stage 2, the hidden-states server: `engines` (the registry the planner asks for a server's
command line), `hf/` (the built-in transformers engine), `vllm` (the vLLM command line and policy),
`health` (waiting for /health)."""
