"""The `[cluster]` section: where a run's processes live when it spans several machines, and the
hardware to plan for when the machine running the app is not the one the run will use.

A run of one machine (the default) needs none of it. Nodes are counted in two roles: training nodes
(one `torchrun` launcher each, `--nnodes training_nodes`) and serving nodes (one hidden-states server
each); `serving_nodes = 0` keeps the server on the first training node, as on one machine. GPU
indices in `hidden_states.gpus` / `training.gpus` are per node. Imports neither torch nor Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from speculators_core.config.checks import Problem
    from speculators_core.config.schema import RunConfig

TRANSPORTS = ("shared-fs", "mooncake")
#: torchrun's usual rendezvous port when `rdzv_endpoint` names only a host.
DEFAULT_RDZV_PORT = 29500


@dataclass
class ClusterSection:
    #: Nodes the run has in all (declared): training_nodes + serving_nodes.
    nodes: int = 1
    #: Nodes that train: one torchrun launcher each (`--nnodes`), each with training.gpus (or
    #: training.cpu_processes) processes.
    training_nodes: int = 1
    #: Nodes that serve hidden states, one server each (with its own data/tensor parallel);
    #: 0 = the server runs on the first training node.
    serving_nodes: int = 0
    #: Declared GPUs per node (0 = the GPUs this machine has): plan for hardware you are not on.
    gpus_per_node: int = 0
    #: Declared memory of each GPU, in GB (GiB); 0 = what this machine's GPUs report.
    gpu_memory_gb: float = 0.0
    #: torchrun's c10d rendezvous, HOST:PORT (every training node must reach it); "" = one node
    #: (`--standalone`). The Slurm export takes the host from the allocation and keeps the port.
    rdzv_endpoint: str = ""
    #: This machine's training node rank (0..training_nodes-1) for `run`/`export --format bash`.
    node_rank: int = 0
    #: A directory every node sees (the hidden-states storage, the prepared data and the checkpoints
    #: must be inside it when nodes > 1); "" = not declared.
    shared_dir: str = ""
    #: Hidden-states server URLs (http://HOST:PORT/v1) training uses; empty = the run's own server.
    #: Several are balanced, and training continues on the others when one dies.
    server_endpoints: list[str] = field(default_factory=list)
    #: How hidden states move from server to trainer: "shared-fs" (the storage directory is on a
    #: filesystem both nodes see; checked with a marker file before training) or "mooncake" (the
    #: Mooncake transfer engine over TCP: documented, not available in this version).
    transport: Literal["shared-fs", "mooncake"] = "shared-fs"

    @property
    def multi_node(self) -> bool:
        return self.training_nodes > 1 or self.serving_nodes > 0

    @property
    def declared(self) -> bool:
        """GPU hardware is declared (plan for it instead of this machine's GPUs)."""
        return self.gpus_per_node > 0 and self.gpu_memory_gb > 0


def split_endpoint(text: str) -> tuple[str, int]:
    """HOST:PORT (or [v6]:PORT, or HOST alone = port 29500) -> (host, port); ValueError when malformed."""
    t = text.strip()
    if not t:
        raise ValueError("empty")
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = rest.removeprefix(":")
    elif t.count(":") == 1:
        host, port = t.split(":")
    elif ":" in t:
        raise ValueError("an IPv6 host must be written in brackets, e.g. [fd00::1]:29500")
    else:
        host, port = t, ""
    if not host:
        raise ValueError("no host")
    if not port:
        return host, DEFAULT_RDZV_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a TCP port")
    return host, int(port)


def _inside(path: str, parent: str) -> bool:
    import os

    p, d = os.path.abspath(os.path.expanduser(path)), os.path.abspath(os.path.expanduser(parent))
    return p == d or p.startswith(d.rstrip(os.sep) + os.sep)


def cluster_problems(cfg: "RunConfig") -> list["Problem"]:
    """What is wrong with `[cluster]`, each with its fix; the shared-filesystem requirement explained."""
    from speculators_core.config.checks import Problem

    c, P = cfg.cluster, []
    for fld in ("nodes", "training_nodes"):
        if getattr(c, fld) < 1:
            P.append(Problem(f"cluster.{fld}", f"must be at least 1, got {getattr(c, fld)}", "use 1 or more"))
    for fld in ("serving_nodes", "gpus_per_node", "gpu_memory_gb", "node_rank"):
        if getattr(c, fld) < 0:
            P.append(Problem(f"cluster.{fld}", f"must not be negative, got {getattr(c, fld)}", "use 0 or more"))
    if c.training_nodes >= 1 and c.serving_nodes >= 0 and c.nodes >= 1 \
            and c.training_nodes + c.serving_nodes != c.nodes:
        P.append(Problem("cluster.nodes",
                         f"{c.nodes} node(s) declared, but training_nodes {c.training_nodes} + serving_nodes "
                         f"{c.serving_nodes} = {c.training_nodes + c.serving_nodes}",
                         f"set cluster.nodes = {c.training_nodes + c.serving_nodes}, or change the split"))
    if (c.gpus_per_node > 0) != (c.gpu_memory_gb > 0):
        P.append(Problem("cluster.gpu_memory_gb" if c.gpus_per_node > 0 else "cluster.gpus_per_node",
                         "declared hardware needs both the GPUs per node and their memory",
                         "set both cluster.gpus_per_node and cluster.gpu_memory_gb (e.g. 8 and 80), or neither"))
    if c.declared:
        for fld, gpus in (("hidden_states.gpus", cfg.hidden_states.gpus), ("training.gpus", cfg.training.gpus)):
            over = [g for g in gpus if g >= c.gpus_per_node]
            if over:
                P.append(Problem(fld, f"GPU {', '.join(map(str, over))} is not on a node of "
                                      f"{c.gpus_per_node} declared GPU(s) (0..{c.gpus_per_node - 1})",
                                 "use indices below cluster.gpus_per_node"))
    if c.node_rank >= max(1, c.training_nodes):
        P.append(Problem("cluster.node_rank", f"{c.node_rank} is not a training node rank "
                                              f"(0..{max(1, c.training_nodes) - 1})",
                         f"use 0..{max(1, c.training_nodes) - 1}"))
    if c.rdzv_endpoint:
        try:
            split_endpoint(c.rdzv_endpoint)
        except ValueError as e:
            P.append(Problem("cluster.rdzv_endpoint", f"{c.rdzv_endpoint!r}: {e}",
                             "write HOST:PORT, e.g. node001:29500 (the first training node)"))
    elif c.training_nodes > 1:
        P.append(Problem("cluster.rdzv_endpoint",
                         f"{c.training_nodes} training nodes need a rendezvous endpoint every node can reach "
                         f"for `run` and the bash export (the Slurm export finds it itself)",
                         "set HOST:PORT of the first training node, e.g. node001:29500, or export with "
                         "--format slurm", "warning"))
    for i, url in enumerate(c.server_endpoints):
        if not url.startswith(("http://", "https://")):
            P.append(Problem(f"cluster.server_endpoints[{i}]", f"{url!r} is not an http(s) URL",
                             "write http://HOST:PORT/v1"))
    if c.transport == "mooncake":
        P.append(Problem("cluster.transport",
                         "the Mooncake transport is documented but not available in this version (it could "
                         "not be run on the machines this was built on): hidden states move through a shared "
                         "filesystem", "use transport = 'shared-fs' with hidden_states.storage_dir on a "
                         "filesystem every node mounts"))
    if c.multi_node:
        needs = [("hidden_states.storage_dir", cfg.storage_dir,
                  "the server's node writes each sample's hidden states there and a training node reads them"),
                 ("data.output", cfg.data.output, "every training node reads the prepared data"),
                 ("training.checkpoint_dir", cfg.training.checkpoint_dir,
                  "rank 0 writes checkpoints there and every node resumes from them")]
        if not c.shared_dir:
            P.append(Problem("cluster.shared_dir",
                             "a run over several nodes needs a filesystem every node mounts: "
                             + "; ".join(f"{k} ({why})" for k, _, why in needs)
                             + ". The run writes a marker file from a serving node and reads it from a "
                               "training node before training, and stops if it is not there",
                             "set cluster.shared_dir to a directory on the cluster's shared filesystem "
                             "(NFS, Lustre, GPFS, ...) and put those directories inside it", "warning"))
        else:
            for key, path, why in needs:
                if not _inside(path, c.shared_dir):
                    P.append(Problem(key, f"{path!r} is not inside cluster.shared_dir {c.shared_dir!r}: {why}",
                                     f"put it under {c.shared_dir}", "warning"))
    return P
