"""The compute dtype for a device: bf16 where the hardware runs it natively, fp32 otherwise.

A CPU without native bf16 (most laptops and cloud CPUs: AVX2, or AVX-512 without AVX512_BF16)
emulates every bf16 matmul: a 2048x256 @ 256x1024 forward+backward took 0.16 s in fp32 and 1.43 s
under bf16 autocast on a 2-core AVX2 EPYC. So `auto` picks

- bf16 on a CUDA device that supports it (compute capability >= 8.0), fp16 on older ones for
  training (with loss scaling); bf16 on every CUDA device for serving (fp16 can overflow);
- bf16 on a CPU with native bf16 (AVX512_BF16 or AMX on x86, the BF16 extension on Arm) when
  torch's kernels and oneDNN may use it (on x86: ATEN_CPU_CAPABILITY not lowered; ONEDNN_MAX_CPU_ISA);
- fp32 otherwise.

An explicit choice is honoured, with the reason saying when it will be slow. This module imports
torch only inside the probes, so the config, the planner and the app can use `DTYPES` freely.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

#: The values of `training.dtype` / `hidden_states.dtype` and of the stages' `--dtype` flags.
DTYPES = ("auto", "bf16", "fp16", "fp32")
#: Spellings the hf engine's `--dtype` has always accepted, kept working.
ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
#: CPU feature flags that mean native bf16 arithmetic (x86 /proc/cpuinfo `flags`, Arm `Features`).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def normalise(name: str) -> str:
    """`bfloat16` -> `bf16` etc.; raises ValueError naming the accepted values."""
    key = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: use one of {', '.join(DTYPES)}")
    return key


@dataclass(frozen=True)
class CpuCaps:
    """What decides bf16 on a CPU. `probe()` reads this machine; tests build their own."""

    #: torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512, SVE256, ...
    capability: str
    #: CPU feature flags (lower case), from /proc/cpuinfo or sysctl.
    flags: frozenset = frozenset()
    #: oneDNN may run bf16 at the ISA it is allowed (False when ONEDNN_MAX_CPU_ISA lowers it).
    onednn_bf16: bool = True

    @classmethod
    def probe(cls) -> "CpuCaps":
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
        try:
            onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            onednn = True  # no oneDNN query: decide from the flags alone
        return cls(capability=capability, flags=frozenset(_cpu_flags()), onednn_bf16=onednn)

    @property
    def x86(self) -> bool:
        """An x86 CPU (its flags name SSE/AVX): the only kind whose torch capability can be lowered below
        its bf16 support."""
        return any(f.startswith(("avx", "sse")) for f in self.flags)

    def native_bf16(self) -> tuple[bool, str]:
        """(native?, why) in words a user can check."""
        have = [f for f in NATIVE_BF16_FLAGS if f in self.flags]
        if not have:
            return False, f"this CPU ({self.capability}) has no native bf16 (AVX512_BF16, AMX or Arm BF16)"
        # On x86 torch's DEFAULT/AVX2 kernels mean ATEN_CPU_CAPABILITY lowered them below the CPU's; on
        # Arm (and macOS, where only FEAT_BF16 is known) DEFAULT is the normal capability.
        if self.x86 and self.capability.upper() in ("DEFAULT", "AVX", "AVX2"):
            return False, (f"the CPU has {'/'.join(h.upper() for h in have)} but torch runs {self.capability} "
                           f"kernels (ATEN_CPU_CAPABILITY?)")
        if not self.onednn_bf16:
            return False, (f"the CPU has {'/'.join(h.upper() for h in have)} but oneDNN may not use it "
                           f"(ONEDNN_MAX_CPU_ISA?)")
        return True, f"this CPU ({self.capability}) has native bf16 ({'/'.join(h.upper() for h in have)})"


@dataclass(frozen=True)
class CudaCaps:
    name: str
    #: (major, minor) compute capability; bf16 needs >= 8.0 (Ampere).
    capability: tuple

    @classmethod
    def probe(cls, device=None) -> "CudaCaps":
        import torch

        idx = device if device is not None else torch.cuda.current_device()
        return cls(name=torch.cuda.get_device_name(idx), capability=tuple(torch.cuda.get_device_capability(idx)))

    @property
    def bf16(self) -> bool:
        return tuple(self.capability) >= (8, 0)


@dataclass(frozen=True)
class DtypeChoice:
    #: bf16, fp16 or fp32
    dtype: str
    #: what was asked for (auto, bf16, fp16, fp32)
    requested: str
    #: cpu or cuda
    device: str
    #: one line: why this dtype on this device
    reason: str

    @property
    def torch_name(self) -> str:
        return TORCH_NAMES[self.dtype]

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.torch_name)

    @property
    def autocast(self) -> bool:
        """Run the forward under autocast (fp32 runs plain: autocast would only add casts)."""
        return self.dtype != "fp32"

    def describe(self) -> str:
        return f"compute dtype {self.dtype} on {self.device} ({self.requested}: {self.reason})"


#: What the dtype is for: "train" (autocast with loss scaling) or "serve" (inference only).
PURPOSES = ("train", "serve")


def choose_dtype(requested: str, device_type: str, cpu: Optional[CpuCaps] = None,
                 cuda: Optional[CudaCaps] = None, purpose: str = "train") -> DtypeChoice:
    """The compute dtype for `device_type` ("cpu" or "cuda"). `cpu`/`cuda` default to this machine's.
    `purpose` "serve" (the hf engine: inference, no loss scaling) keeps bf16 on every CUDA GPU for
    auto: fp16 can overflow activations of a bf16-trained target."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}: use one of {', '.join(PURPOSES)}")
    req = normalise(requested)
    if device_type == "cuda":
        caps = cuda if cuda is not None else CudaCaps.probe()
        cc = ".".join(str(x) for x in caps.capability)
        if req == "auto":
            if purpose == "serve" and not caps.bf16:
                return DtypeChoice("bf16", req, "cuda", f"{caps.name} (compute capability {cc}) has no native "
                                                         f"bf16, but fp16 can overflow a bf16-trained target's "
                                                         f"activations (set dtype = \"fp16\" for speed)")
            if caps.bf16:
                return DtypeChoice("bf16", req, "cuda", f"{caps.name} (compute capability {cc}) supports bf16")
            return DtypeChoice("fp16", req, "cuda", f"{caps.name} (compute capability {cc}) has no bf16; "
                                                     f"fp16 with loss scaling")
        if req == "bf16" and not caps.bf16:
            return DtypeChoice("bf16", req, "cuda", f"as asked; {caps.name} (compute capability {cc}) has no "
                                                     f"native bf16: expect it to be slow or to fail")
        return DtypeChoice(req, req, "cuda", "as asked")
    caps = cpu if cpu is not None else CpuCaps.probe()
    native, why = caps.native_bf16()
    if req == "auto":
        if native:
            return DtypeChoice("bf16", req, "cpu", why)
        return DtypeChoice("fp32", req, "cpu", f"{why}: bf16 would be emulated, several times slower than fp32")
    if req in ("bf16", "fp16") and not native:
        return DtypeChoice(req, req, "cpu", f"as asked, but {why}: {req} is emulated, expect it to be "
                                            f"several times slower than fp32 (use auto)")
    return DtypeChoice(req, req, "cpu", "as asked")


def _cpu_flags() -> set[str]:
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags.update(value.lower().split())
                    break  # the first processor speaks for all
    except OSError:
        pass
    if not flags and sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
            if out == "1":
                flags.add("bf16")
        except (OSError, subprocess.SubprocessError):
            pass
    return flags

