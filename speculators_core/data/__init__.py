"""Stage-1 data preparation internals: where rows come from (`sources`), what a row means
(`conversation`), how a chat template is rendered and the assistant spans found (`render`), how
spans become a token loss mask (`masks`), the per-chunk work (`worker`), the input fingerprint that
makes a prepared directory skippable (`manifest`) and the atomic writer (`writer`).

`speculators_core.prepare` ties them together (CLI and `prepare_dataset()`).
"""
