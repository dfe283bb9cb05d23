"""Wizard step 2: which GPU serves hidden states, which trains, which stays out of the run."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.containers import Vertical
from textual.widgets import Button, DataTable, Input, Static

from speculators_tui.screens.wizard import WizardStep, join
from speculators_tui.widgets.field_input import FieldInput
from speculators_tui.widgets.gpu_panel import ROLE_STYLE

ROLES = ("idle", "server", "training")


class GpuTable(DataTable):
    """A DataTable where one click on a GPU's row selects it (DataTable alone needs two)."""

    async def _on_click(self, event) -> None:
        # Textual also runs DataTable._on_click for this event (handlers of every class in the MRO),
        # after this one: it moves the cursor, and selects only a row that was already highlighted.
        row = event.style.meta.get("row")
        if isinstance(row, int) and 0 <= row < self.row_count and row != self.cursor_row:
            self.post_message(self.RowSelected(self, row, self.ordered_rows[row].key))


class GpuStep(WizardStep):
    STEP = 1
    BINDINGS = [
        Binding("s", "assign('server')", "Server", id="gpus.server"),
        Binding("t", "assign('training')", "Training", id="gpus.training"),
        Binding("n", "assign('idle')", "None", id="gpus.none"),
        Binding("a", "suggest", "Suggested split", id="gpus.suggest"),
        Binding("c", "cpu", "CPU path", id="gpus.cpu", show=False),
        Binding("d", "declare", "Declare hardware", id="gpus.declare"),
    ]

    class Probed(Message):
        def __init__(self, probe) -> None:
            super().__init__()
            self.probe = probe

    def owns(self, dotted: str) -> bool:
        return ((dotted.startswith("hidden_states.") and not dotted.startswith("hidden_states.target_layer_ids"))
                or dotted.startswith("training.gpus") or dotted.startswith("training.cpu_processes")
                or dotted == "run.allow_gpu_sharing" or dotted.startswith("cluster."))

    def compose_body(self) -> ComposeResult:
        yield Static("Probing GPUs…", id="gpu-status")
        yield GpuTable(id="gpu-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text.assemble(("s", "bold"), " server · ", ("t", "bold"), " training · ", ("n", "bold"),
                                   " none · ", ("enter/click", "bold"), " cycle · ", ("a", "bold"),
                                   " suggested split · ", ("c", "bold"), " CPU path"), id="gpu-keys")
        yield Button("Run on the CPU (demo path)", id="cpu-path", compact=True, variant="primary")
        with Vertical(id="declared-hardware"):
            yield Static(Text.assemble(("Hardware elsewhere: ", "bold"), "plan for the nodes the run will use "
                                       "(a cluster, another machine). Nodes × GPUs per node × GPU memory; then ",
                                       ("a", "bold"), " for the suggested split."), id="declared-help")
            yield self.field("cluster.nodes", "Nodes", "machines the run uses")
            yield self.field("cluster.gpus_per_node", "GPUs per node", "declared; 0 = this machine's")
            yield self.field("cluster.gpu_memory_gb", "GPU memory (GB)", "of each GPU, e.g. 80")
            yield self.field("cluster.serving_nodes", "Serving nodes", "one server each; 0 = on a training node")
            yield self.field("cluster.training_nodes", "Training nodes", "one torchrun launcher each")
            yield self.field("cluster.shared_dir", "Shared directory", "every node mounts it (data, hidden "
                                                                       "states, checkpoints inside)")
        yield Static("", id="advice")
        yield self.field("hidden_states.engine", "Server engine")
        yield self.field("hidden_states.gpus", "Server GPUs", "indices, e.g. 0, 1")
        yield self.field("training.gpus", "Training GPUs", "indices; empty = CPU")
        yield self.field("hidden_states.data_parallel_size", "Data parallel", "server replicas (vLLM)")
        yield self.field("hidden_states.tensor_parallel_size", "Tensor parallel", "GPUs per replica (vLLM)")
        yield self.field("hidden_states.gpu_memory_utilization", "GPU memory share", "vLLM's gpu_memory_utilization")
        yield self.field("run.allow_gpu_sharing", "Allow sharing", "server and training on the same GPU")
        yield self.field("training.cpu_processes", "CPU processes", "training processes when on the CPU")
        yield self.field("hidden_states.port", "Server port")
        yield self.field("hidden_states.python", "Server python", "venv interpreter with vLLM; empty = this one")

    _declaring = False

    @property
    def gpus(self) -> list:
        """The GPUs of a node to plan for: the declared ones ([cluster]) when declared, else this machine's."""
        if self.cfg.cluster.declared:
            from speculators_core import declared_gpus

            return declared_gpus(self.cfg)
        probe = self.app.gpu_result  # type: ignore[attr-defined]
        return list(probe.gpus) if probe is not None else []

    def on_mount(self) -> None:
        table = self.query_one("#gpu-table", DataTable)
        table.add_column("GPU")
        table.add_column("Role", width=12)  # fixed: the widest role ("server+train") whatever is shown first
        table.add_columns("Name", "Memory used", "Util", "Running")
        super().on_mount()
        if self.app.gpu_result is None:  # type: ignore[attr-defined]
            self.probe()
        else:
            self._show_probe()

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpu-probe")
    def probe(self) -> None:
        try:
            result = self.app.gpu_probe()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken driver must not leave the step "probing" forever
            from speculators_core import GpuProbe

            result = GpuProbe([], f"no GPU: the GPU probe failed: {type(exc).__name__}: {exc}")
        self.post_message(self.Probed(result))

    def on_gpu_step_probed(self, event: "GpuStep.Probed") -> None:
        self.app.gpu_result = event.probe  # type: ignore[attr-defined]
        self._show_probe()

    def _show_probe(self) -> None:
        probe = self.app.gpu_result  # type: ignore[attr-defined]
        status = self.query_one("#gpu-status", Static)
        table = self.query_one("#gpu-table", DataTable)
        cpu = self.query_one("#cpu-path", Button)
        local = list(probe.gpus) if probe is not None else []
        c = self.cfg.cluster
        self.query_one("#declared-hardware").display = not local or c.declared or self._declaring
        if c.declared:
            status.update(Text.assemble(
                ("Declared hardware: ", "bold"), f"{c.nodes} node{'s' if c.nodes != 1 else ''} × {c.gpus_per_node} "
                f"GPU{'s' if c.gpus_per_node != 1 else ''} × {c.gpu_memory_gb:g} GB",
                f" (this machine: {len(local)} GPU{'s' if len(local) != 1 else ''}).\nGPU indices are per node. Press ",
                ("a", "bold"), " for the suggested split."))
            table.display = True
            self.query_one("#gpu-keys").display = True
            cpu.display = False
        elif not self.gpus:
            why = (probe.error if probe is not None else None) or "no GPU found"
            status.update(Text.assemble(("No GPU: ", "bold yellow"), why.removeprefix("no GPU: "), "\n",
                                        "Tiny targets (builtin:tiny-qwen3) run end to end on the CPU: press ",
                                        ("c", "bold"), " or the button below for the CPU demo path. Planning a "
                                        "run on other machines? Declare their GPUs below."))
            table.display = False
            self.query_one("#gpu-keys").display = False
            cpu.display = True
            self.query_one("#body").scroll_home(animate=False)
        else:
            status.update(Text(f"{len(self.gpus)} GPU(s) detected. Give each one a role:"))
            table.display = True
            self.query_one("#gpu-keys").display = True
            cpu.display = False
            if not isinstance(self.focused, (Input,)):
                table.focus()
        self._fill_table()
        self.revalidate()
        self.refresh_bindings()  # GPU keys shown only when there are GPUs

    def _role(self, index: int) -> str:
        s, t = index in self.cfg.hidden_states.gpus, index in self.cfg.training.gpus
        if self.cfg.cluster.serving_nodes > 0 and s and t:  # the same index on different nodes
            return "server+train"
        return "shared" if s and t else "server" if s else "training" if t else "idle"

    def _fill_table(self) -> None:
        table = self.query_one("#gpu-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        fits = self._memory_fits()
        for g in self.gpus:
            running = ", ".join(f"{p.name} ({p.mem_mb / 1024:.1f}G)" for p in g.processes) or "—"
            util = f"{g.util:.0f}%" if g.util is not None else "?"
            role = self._role(g.index)
            memory = Text(f"{g.mem_used_mb / 1024:.1f}/{g.mem_total_mb / 1024:.0f} GiB")
            fit = fits.get(g.index)
            if fit is not None:  # the predicted need of its role (memory_fit), beside its memory
                memory.append(f" · needs ~{fit.need_bytes / 2**30:.0f}", style="" if fit.ok else "bold red")
            table.add_row(str(g.index), Text(role, style=ROLE_STYLE.get(role, "")), g.name.removeprefix("NVIDIA "),
                          memory, util, running, key=str(g.index))
        if self.gpus:
            table.move_cursor(row=min(max(cursor, 0), len(self.gpus) - 1))

    def _memory_fits(self) -> dict:
        """GPU index -> its predicted memory fit (none when the target's shape is unknown)."""
        from speculators_core import gpu_memory_map, run_memory

        target = self.app.target  # type: ignore[attr-defined]
        gpu_memory = gpu_memory_map(self.cfg, self.app.gpu_result)  # type: ignore[attr-defined]
        if target is None or not gpu_memory:
            return {}
        rm = run_memory(self.cfg, target, gpu_memory)
        return rm.per_gpu() if rm is not None else {}

    def _set_gpus(self, server: list[int], training: list[int]) -> None:
        hs = self.cfg.hidden_states
        hs.gpus, self.cfg.training.gpus = server, training
        if hs.engine == "vllm" and server and len(server) % hs.tensor_parallel_size == 0:
            hs.data_parallel_size = len(server) // hs.tensor_parallel_size
        for dotted in ("hidden_states.gpus", "training.gpus", "hidden_states.data_parallel_size",
                       "hidden_states.tensor_parallel_size"):
            self.query_one(f"#f-{dotted.replace('.', '--')}", FieldInput).set_value(
                getattr(hs if dotted.startswith("hidden") else self.cfg.training, dotted.split(".", 1)[1]))
        self._fill_table()
        self.revalidate()

    def action_assign(self, role: str) -> None:
        if not self.gpus:
            return
        table = self.query_one("#gpu-table", DataTable)
        self.assign(self.gpus[table.cursor_row].index, role)

    def assign(self, index: int, role: str) -> None:
        server = [i for i in self.cfg.hidden_states.gpus if i != index]
        training = [i for i in self.cfg.training.gpus if i != index]
        if role == "server":
            server = sorted(server + [index])
        elif role == "training":
            training = sorted(training + [index])
        self._set_gpus(server, training)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value)
        current = self._role(index)
        nxt = ROLES[(ROLES.index(current) + 1) % len(ROLES)] if current in ROLES else "idle"
        self.assign(index, nxt)

    def action_suggest(self) -> None:
        from speculators_core import suggest_cluster_split

        advice = suggest_cluster_split(self.gpus, self.app.target, self.cfg)  # type: ignore[attr-defined]
        c = self.cfg.cluster
        if c.declared:  # whole nodes per role (one node: the server shares it)
            c.serving_nodes, c.training_nodes = advice.serving_nodes, advice.training_nodes
            c.nodes = max(c.nodes, advice.serving_nodes + advice.training_nodes)
            for dotted in ("cluster.serving_nodes", "cluster.training_nodes", "cluster.nodes"):
                self.query_one(f"#f-{dotted.replace('.', '--')}", FieldInput).set_value(
                    getattr(c, dotted.split(".", 1)[1]))
        hs = self.cfg.hidden_states
        hs.tensor_parallel_size = advice.tensor_parallel_size
        hs.data_parallel_size = advice.data_parallel_size
        self._set_gpus(list(advice.server_gpus), list(advice.training_gpus))
        hs.data_parallel_size = advice.data_parallel_size
        self.query_one("#f-hidden_states--data_parallel_size", FieldInput).set_value(hs.data_parallel_size)
        self._advice_lines = advice.reasons + [f"⚠ {w}" for w in advice.warnings]
        self.revalidate()
        self.notify("Applied the suggested split.")

    def action_declare(self) -> None:
        """Show the declared-hardware fields (plan for nodes other than this machine)."""
        self._declaring = True
        self._show_probe()
        self.query_one("#f-cluster--nodes Input", Input).focus()

    def config_changed(self, dotted: str) -> None:
        if dotted.startswith("cluster.") and self.app.gpu_result is not None:  # type: ignore[attr-defined]
            self._show_probe()

    def action_cpu(self) -> None:
        hs = self.cfg.hidden_states
        if self.cfg.model.target.startswith("builtin:"):
            hs.engine = "hf"
            self.query_one("#f-hidden_states--engine", FieldInput).set_value("hf")
        hs.data_parallel_size = hs.tensor_parallel_size = 1
        self.query_one("#f-hidden_states--tensor_parallel_size", FieldInput).set_value(1)
        self._set_gpus([], [])
        self.notify("Server and training set to run on the CPU.")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cpu-path":
            event.stop()
            self.action_cpu()
        else:
            super().on_button_pressed(event)

    _advice_lines: list[str] = []

    def revalidate(self) -> None:
        super().revalidate()
        from speculators_core import plan_warnings

        probe = self.app.gpu_result  # type: ignore[attr-defined]
        lines = Text()
        if probe is not None:
            for w in plan_warnings(self.cfg, self.gpus, self.app.target):  # type: ignore[attr-defined]
                lines.append(f"⚠ {w}\n", style="yellow")
        for r in self._advice_lines:
            lines.append(f"{r}\n", style="yellow" if r.startswith("⚠") else "dim")
        lines.rstrip()
        advice = self.query_one("#advice", Static)
        advice.update(lines)
        advice.display = bool(lines.plain)
        if probe is not None:
            self._fill_table()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("assign", "suggest") and not self.gpus:
            return False  # hidden: nothing to assign
        return super().check_action(action, parameters)

    def summary(self) -> Text:
        hs, t = self.cfg.hidden_states, self.cfg.training
        server = (f"server ({hs.engine}) on GPU {join(hs.gpus)}"
                  + (f" (dp {hs.data_parallel_size} × tp {hs.tensor_parallel_size})" if hs.engine == "vllm" else "")
                  if hs.gpus else f"server ({hs.engine}) on the CPU")
        n = len(t.gpus) if t.gpus else t.cpu_processes
        train = (f"training on GPU {join(t.gpus)}" if t.gpus else "training on the CPU") + \
            f" ({n} process{'es' if n > 1 else ''})"
        c = self.cfg.cluster
        if c.serving_nodes > 0 or c.training_nodes > 1:
            return Text(f"→ {c.serving_nodes} serving node(s): {server}; {c.training_nodes} training node(s) "
                        f"x {n} process{'es' if n > 1 else ''} = {n * c.training_nodes} training processes")
        return Text(f"→ {server}; {train}")

    def next_screen(self):
        from speculators_tui.screens.step_training import TrainingStep

        return TrainingStep()
