"""The built-in `hf` engine: a transformers forward pass behind vLLM's hidden-states protocol.

`model` (the forward pass and its layer hooks), `batcher` (batched forwards, file writers),
`http` (the vLLM-compatible endpoints and /metrics), `main` (`serve(args)`).
"""
