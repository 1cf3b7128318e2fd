"""Master building blocks without processes: CPU counting, control framing, pid files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from litemesh.config import load_config_text
from litemesh.master import control, cpus, pidfile


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpus.cgroup_cpu_limit(tmp_path) == 1.5
    assert cpus.usable_cpus(tmp_path) == min(len(cpus.affinity_cpus()), 2)


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_cpu_limit(tmp_path) is None
    assert cpus.usable_cpus(tmp_path) == len(cpus.affinity_cpus())


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_cpu_limit(tmp_path) == 0.5
    assert cpus.usable_cpus(tmp_path) == 1  # a fractional quota still gets one worker


def test_no_cgroup_files(tmp_path: Path) -> None:
    assert cpus.cgroup_cpu_limit(tmp_path) is None


@pytest.mark.parametrize("value,expected", [(3, 3), ("4", 4), ("auto", None), (None, None)])
def test_worker_count(value: object, expected: int | None) -> None:
    assert cpus.worker_count(value) == (expected if expected is not None else cpus.usable_cpus())


@pytest.mark.parametrize("value", [0, -1, "x", "1.5", True, 2.0, "0"])
def test_worker_count_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        cpus.worker_count(value)


def _message() -> control.ApplyConfig:
    config = load_config_text("services: [{name: s, targets: ['127.0.0.1:1']}]\n"
                              "routes: [{name: r, paths: ['/'], service: s}]\n")
    return control.ApplyConfig(3, config, {"r": 1}, {"s/127.0.0.1:1": 0})


def test_control_frames_split_anywhere() -> None:
    received: list[control.Message] = []
    proto = control.ControlProtocol(received.append, lambda: None)
    frames = control.encode(_message()) + control.encode(control.Applied(3)) + control.encode(
        control.Ready(42, 3, [8080]))
    for i in range(0, len(frames), 7):  # delivered in 7-byte pieces
        proto.data_received(frames[i:i + 7])
    assert received == [_message(), control.Applied(3), control.Ready(42, 3, [8080])]
    assert received[0].config.routes[0].name == "r"  # decoded into the frozen config structs


def test_control_rejects_oversized_frame() -> None:
    proto = control.ControlProtocol(lambda m: None, lambda: None)
    with pytest.raises(ValueError):
        proto.data_received((control.MAX_FRAME + 1).to_bytes(4, "big"))


def test_pid_file_lifecycle(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.pid")
    pidfile.write_pid_file(path)
    assert pidfile.read_pid(path) == os.getpid()
    pidfile.remove_pid_file(path)
    assert not Path(path).exists()


def test_pid_file_refuses_a_live_other_process(tmp_path: Path) -> None:
    path = tmp_path / "gw.pid"
    path.write_text("1\n")  # init is always alive
    with pytest.raises(pidfile.PidFileError):
        pidfile.write_pid_file(str(path))


def test_stale_pid_file_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "gw.pid"
    path.write_text("999999999\n")
    pidfile.write_pid_file(str(path))
    assert pidfile.read_pid(str(path)) == os.getpid()


def test_default_pid_file_is_named_from_the_config_file_not_its_port(tmp_path: Path) -> None:
    before = load_config_text("listeners: [{address: '127.0.0.1:18123'}]\n")
    after = load_config_text("listeners: [{address: '127.0.0.1:18124'}]\n")  # what a reload may do
    path = str(tmp_path / "gateway.yaml")
    assert pidfile.default_pid_file(before, path) == pidfile.default_pid_file(after, path)
    assert Path(pidfile.default_pid_file(before, path)).name.startswith("litemesh-gateway-")
    os.symlink(path, tmp_path / "link.yaml")  # one file, one pid file, whichever name the operator types
    assert pidfile.default_pid_file(before, str(tmp_path / "link.yaml")) == pidfile.default_pid_file(before, path)
    assert pidfile.default_pid_file(before, str(tmp_path / "other.yaml")) != pidfile.default_pid_file(before, path)
    # --listen quick mode has no file: the listen address names it
    assert pidfile.default_pid_file(before).endswith("litemesh-127.0.0.1-18123.pid")
    configured = load_config_text("server: {pid_file: /run/gw.pid}\n")
    assert pidfile.default_pid_file(configured, path) == "/run/gw.pid"
