"""Stage 0: regenerate chat data's assistant answers with the target (`python -m speculators_core.regenerate`).

`rows` (which source rows, read as prepare reads them; the token row of a regenerated chat),
`output` (the append-only output: resume, settings check, torn tail), `pool` (endpoints, least
in-flight first, retries with backoff), `run` (the concurrent loop and its progress).
"""
