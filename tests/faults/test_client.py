"""Fault matrix, client side: hostile hidden-states servers (paths, files, locks, races, keys).

Every case goes through a real fake server (tests/hidden_states/fake_server.py, a subprocess) and
the SyncHiddenStatesClient with a bounded wait, so a client that hangs fails instead of stalling the
suite. A refused path leaves what it names untouched; a bad file inside the directory is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from speculators_core.hidden_states import HiddenStatesError, SyncHiddenStatesClient, UnsafePath
from speculators_core.hidden_states.errors import AuthenticationFailed
from tests.vllm_fixtures import free_port, start_server, stop_server, wait_health

FAKE = Path(__file__).resolve().parent.parent / "hidden_states" / "fake_server.py"
IDS = [5, 6, 7, 8]


def _start(work: Path, mode: str, storage: Path, **opts):
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, str(FAKE), "--port", str(port), "--dir", str(storage), "--mode", mode]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    log = work / f"fake-{mode}-{port}.log"
    proc = start_server(argv, log)
    wait_health(f"http://127.0.0.1:{port}/health", proc, timeout=60, log=log)
    return f"http://127.0.0.1:{port}/v1", proc


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One fake server that returns whatever path the test writes into its path file."""
    work = tmp_path_factory.mktemp("hostile")
    storage, outside = work / "hs", work / "outside"
    outside.mkdir()
    control = work / "path.json"
    url, proc = _start(work, "from-file", storage, path_file=control)
    yield url, storage, outside, control
    stop_server(proc)


def _empty(*dirs: Path) -> None:
    for d in dirs:
        for p in d.iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _unblock_fifos(d: Path) -> None:
    for p in d.iterdir():
        if stat.S_ISFIFO(os.lstat(p).st_mode):
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def _fetch_bounded(url, storage, ids=IDS, bound=20.0, **kw):
    """fetch() in the client's own thread; fails the test if it takes longer than `bound` seconds."""
    kw.setdefault("request_timeout", 2.0)
    c = SyncHiddenStatesClient([url], str(storage), grace_period=5, **kw)
    try:
        fut = c.submit(0, ids)
        try:
            return fut.result(timeout=bound)
        except TimeoutError:
            _unblock_fifos(storage)  # free a client stuck in open() so the suite can go on
            pytest.fail(f"the client hung for more than {bound:.0f} s")
    finally:
        c.close()


def _hs_file(path: Path, ids=IDS, hs=None, **tensors) -> Path:
    if hs is None:
        hs = np.ones((len(ids), 3, 8), dtype=np.float32)
    data = {"hidden_states": hs, "token_ids": np.asarray(ids, dtype=np.int64)}
    data.update(tensors)
    save_file({k: v for k, v in data.items() if v is not None}, str(path))
    return path


# ---------------------------------------------------------------- hostile paths: refused, untouched
def _victim(outside: Path) -> Path:
    return _hs_file(outside / "victim.safetensors")


def _link(storage, outside, target=None):
    (storage / "link.safetensors").symlink_to(target or _victim(outside))
    return str(storage / "link.safetensors")


def _inner_link(storage, outside):
    _hs_file(storage / "real.safetensors")
    return _link(storage, outside, storage / "real.safetensors")


def _directory(storage, outside):
    (storage / "d.safetensors").mkdir()
    return str(storage / "d.safetensors")


def _fifo(storage, outside):
    os.mkfifo(storage / "f.safetensors")
    return str(storage / "f.safetensors")


def _device(storage, outside):
    os.mknod(storage / "dev.safetensors", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    return str(storage / "dev.safetensors")


def _other_dir(storage, outside):
    other = Path(str(storage) + "-other")  # shares the storage dir's name as a prefix
    other.mkdir(exist_ok=True)
    return str(_hs_file(other / "x.safetensors"))


def _subdir(storage, outside):
    (storage / "sub").mkdir()
    return str(_hs_file(storage / "sub" / "x.safetensors"))


def _lock_as(kind):
    def setup(storage, outside):
        f = _hs_file(storage / "ok.safetensors")
        lock = storage / "ok.safetensors.lock"
        if kind == "fifo":
            os.mkfifo(lock)
        elif kind == "dir":
            lock.mkdir()
        else:
            lock.symlink_to(_victim(outside))
        return str(f)
    return setup


PATHS = {
    "absolute-outside": lambda s, o: "/etc/passwd",
    "dotdot-relative": lambda s, o: "../victim.safetensors",
    "dotdot-inside": lambda s, o: str(s / ".." / "outside" / "victim.safetensors") if _victim(o) else "",
    "storage-itself": lambda s, o: str(s),
    "symlink-out": _link,
    "symlink-in": _inner_link,
    "directory": _directory,
    "fifo": _fifo,
    "device": _device,
    "other-dir": _other_dir,
    "subdir": _subdir,
    "nul-byte": lambda s, o: str(s / "a\x00.safetensors"),
    "not-safetensors": lambda s, o: str(_hs_file(s / "x.txt")),
    "int": lambda s, o: 42,
    "list": lambda s, o: [str(s / "x.safetensors")],
    "lock-fifo": _lock_as("fifo"),
    "lock-dir": _lock_as("dir"),
    "lock-symlink": _lock_as("link"),
}


@pytest.mark.fault("security")
@pytest.mark.parametrize("case", sorted(PATHS))
def test_hostile_path_is_refused_untouched(hostile, case):
    url, storage, outside, control = hostile
    _empty(storage, outside)
    returned = PATHS[case](storage, outside)
    control.write_text(json.dumps(returned))
    before = {p.name: (os.lstat(p).st_mode, os.lstat(p).st_size) for p in [*storage.iterdir(), *outside.iterdir()]}
    t0 = time.monotonic()
    with pytest.raises(HiddenStatesError) as e:
        _fetch_bounded(url, storage)
    assert time.monotonic() - t0 < 10, "refusing a path must not wait for the request timeout"
    assert isinstance(e.value, UnsafePath), e.value
    after = {p.name: (os.lstat(p).st_mode, os.lstat(p).st_size) for p in [*storage.iterdir(), *outside.iterdir()]}
    if case.startswith("lock-"):  # the data file is regular and ours to clean; the odd lock is left alone
        before.pop("ok.safetensors", None)
        after.pop("ok.safetensors", None)
    assert after == before
    assert os.path.getsize("/etc/passwd") > 0


# ------------------------------------------------------ hostile files in the directory: error, cleaned
def _grow(path: Path):
    _hs_file(path)
    size = path.stat().st_size

    def append():
        end = time.monotonic() + 4
        while time.monotonic() < end and path.exists():
            with open(path, "ab") as f:
                f.write(b"x" * 64)
            time.sleep(0.01)
    threading.Thread(target=append, daemon=True).start()
    # the file has grown before the client looks at it, however loaded the machine (else a client
    # scheduled first would read a still-valid file and the case would not test what it names)
    deadline = time.monotonic() + 5
    while path.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.005)


FILES = {
    "nan": (lambda p: _hs_file(p, hs=np.full((4, 3, 8), np.nan, np.float32)), "NaN or Inf"),
    "inf": (lambda p: _hs_file(p, hs=np.full((4, 3, 8), np.inf, np.float32)), "NaN or Inf"),
    "wrong-shape": (lambda p: _hs_file(p, hs=np.ones((4, 8), np.float32)), "must be \\[tokens, layers, hidden\\]"),
    "wrong-ids": (lambda p: _hs_file(p, ids=[9, 9, 9, 9]), "differ from the ids sent"),
    "fewer-tokens": (lambda p: _hs_file(p, ids=IDS[:2], hs=np.ones((2, 3, 8), np.float32)), "2 tokens in the file"),
    "int-dtype": (lambda p: _hs_file(p, hs=np.ones((4, 3, 8), np.int32)), "dtype int32"),
    "missing-key": (lambda p: _hs_file(p, token_ids=None), "missing tensor"),
    "truncated": (lambda p: p.write_bytes(_hs_file(p).read_bytes()[:-20]), "cannot read"),
    "garbage": (lambda p: p.write_bytes(b"\x00garbage" * 20), "cannot read"),
    "huge-header": (lambda p: p.write_bytes((1 << 60).to_bytes(8, "little") + b"{}"), "cannot read"),
    "empty": (lambda p: p.write_bytes(b""), "file not written"),
    "changes-size": (_grow, "file not written|cannot read"),
}


@pytest.mark.fault("client")
@pytest.mark.parametrize("case", sorted(FILES))
def test_hostile_file_is_rejected_and_removed(hostile, case):
    url, storage, outside, control = hostile
    _empty(storage)
    make, msg = FILES[case]
    f = storage / f"{case}.safetensors"
    make(f)
    control.write_text(json.dumps(str(f)))
    with pytest.raises(HiddenStatesError, match=msg):
        _fetch_bounded(url, storage, request_timeout=1.5)
    if case != "changes-size":  # (its writer may recreate the file)
        assert not os.listdir(storage)


# --------------------------------------------------------- races: swap after the check (finding 7)
@pytest.mark.fault("security")
@pytest.mark.parametrize("mode", ["swap-dir", "swap-link"])
def test_swap_after_check_never_reads_or_deletes_outside(tmp_path, mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = _hs_file(outside / "victim.safetensors", hs=np.full((4, 3, 8), 7.0, np.float32))
    url, proc = _start(tmp_path, mode, tmp_path / "hs", escape_path=victim, lock_delay=0.5)
    try:
        with pytest.raises(UnsafePath):
            _fetch_bounded(url, tmp_path / "hs")
    finally:
        stop_server(proc)
    assert victim.exists() and victim.stat().st_size > 0


@pytest.mark.fault("security")
def test_fifo_lock_from_server_does_not_hang(tmp_path):
    url, proc = _start(tmp_path, "fifo-lock", tmp_path / "hs")
    try:
        t0 = time.monotonic()
        with pytest.raises(UnsafePath, match="lock"):
            _fetch_bounded(url, tmp_path / "hs", bound=15)
        assert time.monotonic() - t0 < 10
    finally:
        stop_server(proc)


# ------------------------------------------------------------------- API key (finding 10, client)
@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    work = tmp_path_factory.mktemp("keyed")
    url, proc = _start(work, "ok", work / "hs", api_key="s3cret")
    yield url, work / "hs"
    stop_server(proc)


def _count(url: str) -> int:
    return httpx.get(url.removesuffix("/v1") + "/count").json()["n"]


@pytest.mark.fault("security")
@pytest.mark.parametrize("key", [None, "wrong", ""])
def test_missing_or_wrong_key_is_a_clear_unretried_error(keyed, key):
    url, storage = keyed
    n0 = _count(url)
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed, match="API key") as e:
        _fetch_bounded(url, storage, api_key=key)
    assert time.monotonic() - t0 < 5 and _count(url) - n0 == 1  # one 401, no retries
    assert "api_key_env" in str(e.value) and "s3cret" not in str(e.value)


@pytest.mark.fault("security")
def test_right_key_is_sent(keyed):
    url, storage = keyed
    hs = _fetch_bounded(url, storage, api_key="s3cret")
    assert hs.token_ids.tolist() == IDS and not os.listdir(storage)


# ----------------------------------------------------------------- review fixes (round C)
@pytest.mark.fault("security")
@pytest.mark.parametrize("value, needle", [(None, "not set"), ("", "empty"), ("sk-1\r", "whitespace"),
                                           (" sk-1", "whitespace"), ("\t", "whitespace")])
def test_read_api_key_rejects_what_the_servers_would_refuse(value, needle):
    from speculators_core.hidden_states.client import ApiKeyError, read_api_key

    environ = {} if value is None else {"HS_K": value}
    with pytest.raises(ApiKeyError) as e:
        read_api_key("HS_K", environ)
    assert "HS_K" in str(e.value) and needle in str(e.value) and "sk-1" not in str(e.value)
    assert e.value.fix


@pytest.mark.fault("security")
def test_read_api_key_returns_the_key_as_is():
    from speculators_core.hidden_states.client import read_api_key

    assert read_api_key("HS_K", {"HS_K": "sk-1"}) == "sk-1"


@pytest.mark.fault("security")
def test_client_refuses_a_key_with_surrounding_whitespace(tmp_path):
    from speculators_core.hidden_states import HiddenStatesClient

    with pytest.raises(ValueError, match="whitespace"):
        HiddenStatesClient(["http://127.0.0.1:1/v1"], str(tmp_path), api_key="sk-1\r")
