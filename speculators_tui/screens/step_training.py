"""Wizard step 3: the training mode and hyper-parameters (advanced options folded)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Collapsible, Static

from speculators_core import MODE_HELP
from speculators_tui.screens.wizard import WizardStep

ADVANCED = (
    ("training.hidden_states_cache", "Hidden-states cache", "hybrid/offline; empty = <output>/hidden_states"),
    ("training.scheduler", "LR schedule", ""),
    ("training.warmup_ratio", "Warm-up ratio", "share of steps"),
    ("training.weight_decay", "Weight decay", ""),
    ("training.grad_clip", "Gradient clip", ""),
    ("training.val_split", "Validation split", "share of rows held out"),
    ("training.noise", "Input noise", "on the target's hidden states"),
    ("training.save_best", "Save best", "keep checkpoint_best (lowest validation loss)"),
    ("training.resume", "Resume", "continue from the latest checkpoint"),
    ("training.from_pretrained", "From pretrained", "drafter to start from"),
    ("training.logger", "Logger", ""),
    ("training.seed", "Seed", ""),
    ("training.max_in_flight", "Requests in flight", "hidden-states requests per process"),
    ("training.max_files_on_disk", "Files on disk", "hidden-states files per process"),
    ("evaluation.enabled", "Evaluate after training", "measure acceptance length (stage 4)"),
    ("evaluation.engine", "Evaluation engine", "vllm: vLLM's counters; hf: in-process, no vLLM"),
    ("evaluation.prompts", "Evaluation prompts", "jsonl; empty = the held-out split"),
    ("evaluation.num_prompts", "Evaluation prompts used", ""),
    ("evaluation.num_speculative_tokens", "Speculative tokens (K)", "several = a sweep"),
    ("evaluation.every_epoch", "Evaluate every epoch", ""),
    ("evaluation.select_best_by", "Best checkpoint by", "val_loss or acceptance_length"),
)


#: One line per mode for the drop-down; MODE_HELP (the engine's words) is shown for the chosen one.
MODE_LINES = {
    "online": "online: generate on demand, delete after use",
    "hybrid": "hybrid: generate in epoch 1, cache, reuse",
    "offline": "offline: generate all first, then train from the cache",
}


def mode_help(mode: str) -> Text:
    return Text.assemble((f"{mode}: ", "bold"), (MODE_HELP.get(mode, ""), "dim"))


class TrainingStep(WizardStep):
    STEP = 2

    def owns(self, dotted: str) -> bool:
        return (dotted.startswith("training.") and not dotted.startswith(("training.gpus", "training.cpu_processes"))
                or dotted.startswith("evaluation."))

    def compose_body(self) -> ComposeResult:
        yield self.field("training.mode", "Mode", choice_labels=MODE_LINES)
        yield Static(mode_help(self.cfg.training.mode), id="mode-help")
        yield self.field("training.draft_vocab_size", "Draft vocab size", "tokens the drafter predicts")
        yield self.field("training.epochs", "Epochs")
        yield self.field("training.lr", "Learning rate")
        yield self.field("training.total_seq_len", "Total seq length", "tokens packed per step")
        yield self.field("training.num_layers", "Draft layers")
        yield self.field("training.ttt_steps", "TTT steps", "draft tokens trained per position")
        yield self.field("training.checkpoint_dir", "Checkpoint dir")
        with Collapsible(title="Advanced options", collapsed=True, id="advanced"):
            for dotted, label, hint in ADVANCED:
                yield self.field(dotted, label, hint)

    def config_changed(self, dotted: str) -> None:
        if dotted == "training.mode":
            self.query_one("#mode-help", Static).update(mode_help(self.cfg.training.mode))

    def summary(self) -> Text:
        t = self.cfg.training
        cache = f", cache in {self.cfg.hidden_states_cache}" if t.mode != "online" else ""
        return Text.assemble("→ ", (t.mode, "bold"), f": {t.epochs} epoch(s) × {t.ttt_steps} TTT steps, "
                             f"{t.num_layers} draft layer(s), draft vocab {t.draft_vocab_size:,}; "
                             f"checkpoints in {t.checkpoint_dir}{cache}")

    def next_screen(self):
        from speculators_tui.screens.review import ReviewScreen

        return ReviewScreen()
