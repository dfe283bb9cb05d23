"""Wizard step 1: the target model and the training data."""

from __future__ import annotations

import re
from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static

from speculators_core import human_count
from speculators_tui.screens.wizard import WizardStep

OWNED = ("model.", "data.", "run.name", "run.dir", "hidden_states.target_layer_ids")


class ModelStep(WizardStep):
    STEP = 0

    class TargetLoaded(Message):
        def __init__(self, spec: str, target, why: Optional[str]) -> None:
            super().__init__()
            self.spec, self.target, self.why = spec, target, why

    def owns(self, dotted: str) -> bool:
        return dotted.startswith(OWNED)

    def compose_body(self) -> ComposeResult:
        yield self.field("model.target", "Target model", "HF id (in the local hub cache), local dir or builtin:tiny-qwen3")
        yield Static("", id="target-info")
        yield self.field("data.sources", "Datasets", "comma-separated: sharegpt, ultrachat, builtin:demo-chat, file.jsonl")
        yield self.field("data.max_samples", "Max samples", "empty = all")
        yield self.field("data.seq_length", "Sequence length", "tokens per sample")
        yield self.field("data.output", "Output dir", "prepared data, hidden-states scratch and cache")
        yield self.field("hidden_states.target_layer_ids", "Layer ids", "empty = [2, L//2, L-3, L]")
        yield self.field("run.name", "Run name")
        yield self.field("run.dir", "Runs dir", "run directories go here")

    def on_mount(self) -> None:
        super().on_mount()
        self._show_target()
        self.load_target(self.cfg.model.target)

    def config_changed(self, dotted: str) -> None:
        if dotted == "model.target":
            self.app.target, self.app.target_why = None, None  # type: ignore[attr-defined]
            self.load_target(self.cfg.model.target)

    @work(thread=True, exclusive=True, exit_on_error=False, group="target")
    def load_target(self, spec: str) -> None:
        from speculators_core import try_load_target

        target, why = try_load_target(spec) if spec.strip() else (None, "no target given")
        self.post_message(self.TargetLoaded(spec, target, why))

    def on_model_step_target_loaded(self, event: "ModelStep.TargetLoaded") -> None:
        if event.spec != self.cfg.model.target:
            return  # a newer edit is being loaded
        self.app.target, self.app.target_why = event.target, event.why  # type: ignore[attr-defined]
        self._show_target()
        self.revalidate()

    def _show_target(self) -> None:
        t = self.app.target  # type: ignore[attr-defined]
        info = self.query_one("#target-info", Static)
        if t is not None and t.name == self.cfg.model.target:
            params = t.num_parameters()
            info.update(Text.assemble(("✔ ", "green"), (f"{t.model_type or '?'}: ", "bold"),
                                      f"{t.num_hidden_layers} layers · hidden {t.hidden_size} · vocab {t.vocab_size} · "
                                      f"{human_count(params)} params · {t.dtype}"))
        else:
            why = re.sub(r" \(looked in: [^)]*\)", "", self.app.target_why or "checking…")  # type: ignore[attr-defined]
            info.update(Text.assemble(("ℹ ", "yellow"), ("config not reachable offline: ", "dim"), (why, "dim")))

    def extra_problems(self) -> list:
        from speculators_core import Problem

        c = self.cfg
        if c.model.target.strip() and self.app.target is None and not c.hidden_states.target_layer_ids:  # type: ignore[attr-defined]
            if self.app.target_why is None:  # type: ignore[attr-defined]
                return []  # still loading
            return [Problem("hidden_states.target_layer_ids",
                            "the target's config.json is not reachable offline, so the default ids are unknown",
                            "set them, e.g. [2, L//2, L-3, L] for L layers, or give a local model directory")]
        return []

    def summary(self) -> Text:
        c = self.cfg
        n = f"up to {c.data.max_samples:,}" if c.data.max_samples else "all"
        srcs = ", ".join(c.data.sources) or "no data"
        t = self.app.target  # type: ignore[attr-defined]
        layers = ""
        if t is not None:
            from speculators_core import resolved_layer_ids

            layers = f"; hidden states of layers {resolved_layer_ids(c, t.num_hidden_layers)}"
        return Text(f"→ {n} samples from {srcs}, cut at {c.data.seq_length} tokens, prepared into "
                    f"{c.data.output}{layers}")

    def next_screen(self):
        from speculators_tui.screens.step_gpus import GpuStep

        return GpuStep()


