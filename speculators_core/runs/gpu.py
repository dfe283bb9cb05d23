"""GPU probing and sampling through NVML (`nvidia-ml-py`, imported as `pynvml`).

GPU indices are the ones the user's CUDA sees: with an inherited CUDA_VISIBLE_DEVICES=2,3 the two
GPUs are listed as 0 and 1 (NVML's own numbering kept in `nvml_index`), matching how the config's
`gpus` lists are mapped by `commands.build_stages`. Without an NVIDIA driver `probe_gpus` returns
no GPUs and an `error` starting with "no GPU:"; nothing raises.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from speculators_core.fsutil import append_jsonl

MB = 1024 * 1024


@dataclass
class GpuProcess:
    pid: int
    name: str
    mem_mb: float
    #: False in a PID namespace (a container): NVML gives host PIDs, which name no process here, so
    #: whether it is one of ours cannot be told.
    attributable: bool = True


@dataclass
class GpuInfo:
    index: int
    name: str
    mem_total_mb: float
    mem_used_mb: float
    util: Optional[float]
    power_w: Optional[float]
    temp_c: Optional[float]
    processes: list[GpuProcess] = field(default_factory=list)
    #: NVML's index (differs from `index` under CUDA_VISIBLE_DEVICES) and the GPU's UUID.
    nvml_index: int = -1
    uuid: str = ""
    #: Why NVML could not read this GPU ("" = read); such a GPU is listed, never called idle.
    error: str = ""
    #: The MIG instance CUDA_VISIBLE_DEVICES named (its UUID); the figures are the parent GPU's.
    mig: str = ""

    @property
    def mem_free_mb(self) -> float:
        return max(0.0, self.mem_total_mb - self.mem_used_mb)

    def is_idle(self, own_pids: frozenset[int] = frozenset()) -> bool:
        """No foreign compute process and under 5% of its memory in use (processes that cannot be
        attributed, in a PID namespace, are judged by the memory alone)."""
        if self.error:
            return False
        foreign = [p for p in self.processes if p.attributable and p.pid not in own_pids]
        return not foreign and self.mem_used_mb <= 0.05 * self.mem_total_mb


@dataclass
class GpuProbe:
    gpus: list[GpuInfo]
    error: Optional[str] = None  # "no GPU: <why>" when there is none

    def to_dict(self) -> dict[str, Any]:
        return {"gpus": [asdict(g) for g in self.gpus], "error": self.error}


def visible_nvml_indices(environ: Mapping[str, str], count: int, uuids: list[str],
                         mig_parents: Optional[Mapping[str, int]] = None) -> tuple[list[int], Optional[str]]:
    """NVML indices the process may use, in CUDA order, from CUDA_VISIBLE_DEVICES.

    Entries are integers or (prefixes of) UUIDs as CUDA accepts them; a MIG instance's UUID
    (`MIG-...`, from `mig_parents`: MIG UUID -> parent NVML index) stands for its parent GPU. As in
    CUDA, the list stops at the first invalid entry. Returns (indices, note) where note explains a
    truncated/empty list.
    """
    raw = environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count)), None
    raw = raw.strip()
    if raw == "":
        return [], "CUDA_VISIBLE_DEVICES is empty, which hides every GPU"
    out: list[int] = []
    for entry in [e.strip() for e in raw.split(",")]:
        idx: Optional[int] = None
        if entry.lstrip("-").isdigit():
            n = int(entry)
            idx = n if 0 <= n < count else None
        elif entry.startswith("MIG-") and mig_parents:
            parents = {n for u, n in mig_parents.items() if u == entry or u.startswith(entry)}
            idx = parents.pop() if len(parents) == 1 else None
        elif entry:
            matches = [i for i, u in enumerate(uuids) if u and (u == entry or u.startswith(entry)
                       or u.startswith("GPU-" + entry))]
            idx = matches[0] if len(matches) == 1 else None
        if idx is None or idx in out:
            note = f"CUDA_VISIBLE_DEVICES={raw}: entry {entry!r} is not a GPU of this machine ({count} found)"
            return out, (note if not out else note + f"; using the {len(out)} before it")
        out.append(idx)
    return out, None


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            parts = [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
        if parts:
            name = os.path.basename(parts[0])
            if name.startswith("python") and len(parts) > 1:
                rest = parts[2] if parts[1] == "-m" and len(parts) > 2 else os.path.basename(parts[1])
                return f"{name} {rest}"
            return name
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return f"pid {pid}"


def _nvml():
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None, "no GPU: nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        text = str(exc) or type(exc).__name__
        if "NotFound" in type(exc).__name__ or "not found" in text.lower():
            text = "the NVIDIA driver library (libnvidia-ml.so) was not found"
        return None, f"no GPU: {text}"
    return pynvml, None


def _opt(fn, *args, scale: float = 1.0) -> Optional[float]:
    try:
        v = fn(*args)
    except Exception:
        return None
    return None if v is None else float(v) / scale


def in_pid_namespace() -> bool:
    """True inside a PID namespace other than the host's (a container): /proc/self/status lists
    this process's PID in each nested namespace (NSpid), more than one entry when nested."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


def _unreadable(index: int, nvml_index: int, uuid: str, exc: BaseException) -> GpuInfo:
    return GpuInfo(index=index, name="unreadable GPU", mem_total_mb=0.0, mem_used_mb=0.0, util=None,
                   power_w=None, temp_c=None, nvml_index=nvml_index, uuid=uuid,
                   error=f"NVML: {str(exc) or type(exc).__name__}")


def _mig_parents(nv, handles: list) -> dict[str, int]:
    """MIG instance UUID -> its parent's NVML index (none where MIG is off or unsupported)."""
    out: dict[str, int] = {}
    for n, h in enumerate(handles):
        if h is None:
            continue
        try:
            slots = int(nv.nvmlDeviceGetMaxMigDeviceCount(h))
        except Exception:
            continue
        for j in range(slots):
            try:
                out[_text(nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetMigDeviceHandleByIndex(h, j)))] = n
            except Exception:  # an empty slot
                continue
    return out


def _read_gpu(nv, handle, index: int, nvml_index: int, name: str, uuid: str, with_processes: bool,
              pid_namespace: bool = False) -> GpuInfo:
    mem = nv.nvmlDeviceGetMemoryInfo(handle)
    util = None
    try:
        util = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:
        pass
    procs: list[GpuProcess] = []
    if with_processes:
        seen: set[int] = set()
        for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                plist = getattr(nv, getter)(handle)
            except Exception:
                continue
            for p in plist:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                used = getattr(p, "usedGpuMemory", None)
                if pid_namespace:  # host PIDs: /proc here does not know them (or names another process)
                    procs.append(GpuProcess(int(p.pid), "cannot attribute (host PID, this is a container)",
                                            float(used) / MB if used else 0.0, attributable=False))
                    continue
                procs.append(GpuProcess(int(p.pid), _process_name(int(p.pid)), float(used) / MB if used else 0.0))
    return GpuInfo(
        index=index, name=name, mem_total_mb=float(mem.total) / MB, mem_used_mb=float(mem.used) / MB,
        util=util,
        power_w=_opt(nv.nvmlDeviceGetPowerUsage, handle, scale=1000.0),
        temp_c=_opt(nv.nvmlDeviceGetTemperature, handle, getattr(nv, "NVML_TEMPERATURE_GPU", 0)),
        processes=procs, nvml_index=nvml_index, uuid=uuid,
    )


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def probe_gpus(environ: Optional[Mapping[str, str]] = None) -> GpuProbe:
    """The GPUs this process may use (CUDA numbering), with memory, use and foreign processes."""
    environ = os.environ if environ is None else environ
    nv, err = _nvml()
    if nv is None:
        return GpuProbe([], err)
    try:
        count = nv.nvmlDeviceGetCount()
        handles, uuids, failed = [], [], {}
        for i in range(count):  # one GPU NVML cannot read (fallen off the bus, ...) voids only itself
            try:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                uuids.append(_text(nv.nvmlDeviceGetUUID(h)))
                handles.append(h)
            except Exception as exc:
                handles.append(None)
                uuids.append("")
                failed[i] = exc
        visible, note = visible_nvml_indices(environ, count, uuids, _mig_parents(nv, handles))
        if count == 0:
            return GpuProbe([], "no GPU: the NVIDIA driver reports 0 GPUs")
        if not visible:
            return GpuProbe([], f"no GPU: {note}")
        names = [e.strip() for e in environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
        pidns = in_pid_namespace()
        gpus = []
        for i, n in enumerate(visible):
            if n in failed:
                gpus.append(_unreadable(i, n, uuids[n], failed[n]))
                continue
            try:
                g = _read_gpu(nv, handles[n], i, n, _text(nv.nvmlDeviceGetName(handles[n])), uuids[n], True, pidns)
            except Exception as exc:
                g = _unreadable(i, n, uuids[n], exc)
            if i < len(names) and names[i].startswith("MIG-"):
                g.mig = names[i]
            gpus.append(g)
        return GpuProbe(gpus, None)
    except Exception as exc:
        return GpuProbe([], f"no GPU: NVML query failed: {exc}")
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


def describe(probe: GpuProbe) -> list[str]:
    """Human lines for `speculators-tui gpus`."""
    if not probe.gpus:
        return [probe.error or "no GPU"]
    lines = []
    for g in probe.gpus:
        util = f"{g.util:.0f}%" if g.util is not None else "?"
        extra = f" (NVML {g.nvml_index})" if g.nvml_index not in (-1, g.index) else ""
        if g.error:
            lines.append(f"GPU {g.index}{extra}: unreadable ({g.error})")
            continue
        if g.mig:
            extra += f" [MIG instance {g.mig} of this GPU]"
        lines.append(f"GPU {g.index}{extra}: {g.name}, {g.mem_used_mb / 1024:.1f}/{g.mem_total_mb / 1024:.1f} GiB "
                     f"used, util {util}" + (f", {g.power_w:.0f} W" if g.power_w is not None else "")
                     + (f", {g.temp_c:.0f} C" if g.temp_c is not None else ""))
        for p in g.processes:
            lines.append(f"    pid {p.pid} {p.name}: {p.mem_mb:.0f} MiB")
    return lines


def gpu_roles(server_gpus: list[int], training_gpus: list[int], indices: list[int]) -> dict[int, str]:
    """server / training / shared / idle for each index."""
    roles = {}
    for i in indices:
        s, t = i in server_gpus, i in training_gpus
        roles[i] = "shared" if s and t else "server" if s else "training" if t else "idle"
    return roles


class GpuSampler:
    """A background thread sampling every GPU each `interval` (>= 1 s) seconds.

    Each sample is appended to `history` (bounded) and, when a path is given, written as one
    gpu.jsonl line `{"time", "gpus": [{"index", "name", "util", "mem_used_mb", "mem_total_mb",
    "power_w", "temp_c", "role"}]}`. The next sample is scheduled only after the last finished.
    With no GPU the thread ends at once and writes nothing.
    """

    def __init__(self, environ: Optional[Mapping[str, str]] = None, maxlen: int = 600):
        self.environ = dict(os.environ if environ is None else environ)
        self.history: deque[dict] = deque(maxlen=maxlen)
        self.error: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._path: Optional[Path] = None
        self._roles: dict[int, str] = {}
        self._groups: Optional[Callable[[], dict[int, str]]] = None
        self._interval = 2.0

    def start(self, path: Optional[Path], roles: Optional[dict[int, str]] = None, interval: float = 2.0,
              groups: Optional[Callable[[], dict[int, str]]] = None) -> "GpuSampler":
        """`groups`: when given, each sample also lists the processes on each GPU
        (`"processes": [{"pid", "name", "mem_mb", "stage"}]`), `stage` naming the run's stage whose
        process group (from `groups()`: pgid -> stage name) the process is in, None for others."""
        self._path = Path(path) if path else None
        self._roles = dict(roles or {})
        self._groups = groups
        self._interval = max(1.0, float(interval))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        nv, err = _nvml()
        if nv is None:
            self.error = err
            return
        try:
            count = nv.nvmlDeviceGetCount()
            handles, uuids, names = [], [], []
            for i in range(count):  # a GPU NVML cannot read is left out, not the whole sampler
                try:
                    h = nv.nvmlDeviceGetHandleByIndex(i)
                    uuids.append(_text(nv.nvmlDeviceGetUUID(h)))
                    names.append(_text(nv.nvmlDeviceGetName(h)))  # slow-changing: read once
                    handles.append(h)
                except Exception:
                    handles.append(None)
                    uuids.append("")
                    names.append("unreadable GPU")
            visible, note = visible_nvml_indices(self.environ, count, uuids, _mig_parents(nv, handles))
            if not visible:
                self.error = f"no GPU: {note or 'the NVIDIA driver reports 0 GPUs'}"
                return
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    record = {"time": time.time(), "gpus": []}
                    groups = _call_groups(self._groups)
                    for i, n in enumerate(visible):
                        try:
                            if handles[n] is None:
                                raise RuntimeError("no NVML handle")
                            g = _read_gpu(nv, handles[n], i, n, names[n], uuids[n], with_processes=groups is not None)
                        except Exception as exc:  # this GPU only: the others are still sampled
                            self.error = f"GPU {i}: sampling failed: {exc}"
                            continue
                        record["gpus"].append({
                            "index": i, "name": g.name, "util": g.util, "mem_used_mb": round(g.mem_used_mb, 1),
                            "mem_total_mb": round(g.mem_total_mb, 1), "power_w": g.power_w, "temp_c": g.temp_c,
                            "role": self._roles.get(i, "idle"),
                        })
                        if groups is not None:
                            record["gpus"][-1]["processes"] = [
                                {"pid": p.pid, "name": p.name, "mem_mb": round(p.mem_mb, 1),
                                 "stage": own_stage(p.pid, groups)} for p in g.processes]
                    self.history.append(record)
                    if self._path is not None:
                        append_jsonl(self._path, record)
                except Exception as exc:  # a GPU fell off the bus: note it, keep sampling the others
                    self.error = f"GPU sampling failed: {exc}"
                self._stop.wait(max(0.0, self._interval - (time.monotonic() - t0)))
        finally:
            try:
                nv.nvmlShutdown()
            except Exception:
                pass


def _call_groups(groups: Optional[Callable[[], dict[int, str]]]) -> Optional[dict[int, str]]:
    if groups is None:
        return None
    try:
        return dict(groups())
    except Exception:  # the supervisor's table changed under us: list processes without stages
        return {}


def own_stage(pid: int, groups: dict[int, str]) -> Optional[str]:
    """The stage whose process group `pid` is in (torchrun's workers and vLLM's engine processes
    inherit their stage's group), or None for a process that is not the run's."""
    try:
        return groups.get(os.getpgid(pid))
    except OSError:  # gone, or not visible from here (another PID namespace)
        return None
