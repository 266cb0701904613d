"""The `mpml virtual` commands and the setup scripts' refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpml import virtual
from mpml.device import Connection
from mpml.virtual.manager import process_alive

REPO = Path(__file__).resolve().parents[1]


def mpml(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpml", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_start_list_stop_leaves_no_process(kind):
    name = f"cli-{kind}"
    r = mpml("virtual", "start", kind, "--name", name, "--fresh")
    assert r.returncode == 0, r.stderr
    port = r.stdout.strip()
    assert stat.S_ISCHR(os.stat(port).st_mode)
    with Connection(port) as c:
        assert c.eval("1 + 1") == 2

    listing = mpml("virtual", "list").stdout
    line = next(ln for ln in listing.splitlines() if ln.startswith(name + " "))
    assert "running" in line and port in line

    state = virtual.get(name).state
    pids = [state["pid"], state["child_pid"]]
    assert all(process_alive(p) for p in pids)
    r = mpml("virtual", "stop", name)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(process_alive(p) for p in pids), "supervisor or firmware survived `mpml virtual stop`"
    assert "stopped" in next(ln for ln in mpml("virtual", "list").stdout.splitlines() if ln.startswith(name + " "))


def test_starting_a_running_board_returns_the_same_port():
    a = mpml("virtual", "start", "unix", "--name", "cli-twice")
    b = mpml("virtual", "start", "unix", "--name", "cli-twice")
    try:
        assert a.returncode == b.returncode == 0
        assert a.stdout == b.stdout
    finally:
        mpml("virtual", "stop", "cli-twice")


def test_unknown_board_is_refused():
    r = mpml("virtual", "start", "esp32-s9")
    assert r.returncode != 0
    assert "unknown virtual board 'esp32-s9'" in r.stderr
    assert all(kind in r.stderr for kind in virtual.specs())


def test_list_names_every_board_and_its_filesystem():
    out = mpml("virtual", "list").stdout
    for kind, spec in virtual.specs().items():
        assert kind in out and spec.arch in out
    assert "256 KiB RAM disk (standing for flash)" in out


def test_apt_step_without_root_prints_the_install_line():
    env = dict(os.environ, MPML_EXTRA_APT_PACKAGES="mpml-test-no-such-package")
    cmd = [str(REPO / "tools/setup/apt.sh")]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "apt-get install -y --no-install-recommends mpml-test-no-such-package" in r.stderr


def test_source_step_refuses_a_tree_that_is_not_micropython(tmp_path):
    env = dict(os.environ, MICROPY_DIR=str(tmp_path))
    r = subprocess.run([str(REPO / "tools/setup/micropython-source.sh"), str(tmp_path / "build")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "not a MicroPython source tree" in r.stderr


def test_source_step_refuses_an_unsupported_version(tmp_path):
    (tmp_path / "py").mkdir()
    (tmp_path / "py/mpconfig.h").write_text("#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 19\n")
    env = dict(os.environ, MICROPY_DIR=str(tmp_path))
    r = subprocess.run([str(REPO / "tools/setup/micropython-source.sh"), str(tmp_path / "build")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "1.19" in r.stderr and "v1.25 to v1.28" in r.stderr
