# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15, session classes: class and type from the module's arguments or
from the PAM environment (pam_env); a class outside manager_classes (a
display manager's greeter) is tracked and listed, but its login neither
starts nor waits for a manager, nor keeps one running; a user session of the
same user afterwards does start one, and waits for it.

The backend is a custom one that reports ready only once the test opens a
gate (a FIFO), so "the login waits" and "the login does not wait" are both
observable: a waiting login is still inside pam_open_session while the
manager is "starting".
"""
import json
import subprocess

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

GATE = sb.TEST_DIR + "/gate"
BACKEND_PATH = sb.TEST_DIR + "/gate-backend"
BACKEND = """#!/bin/sh
read -r _ < %s
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
""" % GATE


def start_gated(world, **extra):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, BACKEND, mode=0o755)
    world.run(["mkfifo", "-m", "0666", GATE], check=True)
    cfg = {"backend": BACKEND_PATH, "stop_delay": 0, "login_timeout": 60}
    cfg.update(extra)
    world.daemon = world.start_daemon(cfg)
    return world.daemon


def status(world, user):
    return world.ctl_json("status", user)


def wait_state(world, user, state, timeout=10):
    def probe():
        try:
            return status(world, user)["state"] == state
        except sb.SandboxError:  # not known yet
            return False
    return world.wait_for(probe, timeout=timeout, what="%s %s" % (user, state))


def hold_with_pam_env(world, user, value, timeout):
    """A login held inside pam_open_session whose stack sets
    XDG_SESSION_CLASS (and the type, seat, VT) with pam_env before the module."""
    conf = sb.TEST_DIR + "/pam_env.conf"
    world.write_file(conf, "XDG_SESSION_CLASS DEFAULT=%s\nXDG_SESSION_TYPE DEFAULT=wayland\n"
                     "XDG_SEAT DEFAULT=seat0\nXDG_VTNR DEFAULT=7\n" % value)
    hold_dir = sb.TEST_DIR + "/hold-env"
    world.run(["sh", "-c", 'mkdir -p "$1" && mkfifo "$1/opened" "$1/release"', "sh", hold_dir],
              check=True)
    lines = world.pam_stack(module=False)
    lines.append("session  required   pam_env.so readenv=1 conffile=%s user_readenv=0" % conf)
    lines.append("session  optional   %s socket=%s" % (sb.PAM_MODULE, sb.DEFAULT_SOCKET))
    lines.append("session  required   pam_exec.so %s %s" % (sb.PAM_HOLD, hold_dir))
    world.write_pam_service("dus-env-class", lines)
    argv = ["pamtester", "-v", "dus-env-class", user, "open_session", "close_session"]
    h = sb.PamHold(world, argv, "dus-env-class", hold_dir, timeout)
    world.held.append(h)
    return h


def open_gate_later(world):
    """Open the gate for the next manager start, whenever it comes (a
    background writer, detached from the harness's pipes)."""
    world.run(["sh", "-c", '(echo go > "$1") </dev/null >/dev/null 2>&1 &', "sh", GATE],
              check=True)


def user_login_waits(world, user):
    """A user-class login of user: it waits (still running while the manager
    is starting), and goes on once the gate opens."""
    p = world.popen(["pamtester", "-v", "dus-test", user, "open_session", "close_session"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_state(world, user, "starting")
        assert p.poll() is None, "the user login did not wait for its manager"
        world.run(["sh", "-c", 'echo go > "$1"', "sh", GATE], check=True, timeout=10)
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    return out


def check_greeter_then_user(world, held, expect):
    d = world.daemon
    sessions = world.sessions()
    assert len(sessions) == 1, sessions
    s = sessions[0]
    assert (s["class"], s["type"], s["seat"], s["vtnr"]) == expect, s
    assert s["pid"] == held.pid
    st = status(world, "user1")
    assert st["state"] == "stopped" and st["manager_pid"] is None, st
    assert [x["class"] for x in st["sessions"]] == [expect[0]]
    assert "started the manager of user1" not in d.log()
    # The text table shows the same.
    txt = world.ctl("list-sessions").stdout.splitlines()
    assert txt[0].split()[7:10] == ["CLASS", "TYPE", "SEAT"], txt
    assert txt[1].split()[7:10] == [expect[0], expect[1] or "-", expect[2] or "-"], txt

    # A user session of the same user afterwards starts the manager and waits.
    user_login_waits(world, "user1")
    assert "started the manager of user1" in d.log()
    # Its logout stops the manager (stop_delay 0): the greeter keeps none alive.
    wait_state(world, "user1", "stopped")
    assert [x["class"] for x in world.sessions()] == [expect[0]]
    assert held.release() == 0
    world.wait_for(lambda: world.users() == [], what="user1 forgotten")


def test_greeter_by_module_argument(world):
    """class=greeter: the login returns at once (login_timeout is 60 s, the
    hold gives it 8), no manager starts, and the session is listed."""
    start_gated(world)
    h = world.hold_pamtester("user1", timeout=8, module_args=["class=greeter", "type=x11"])
    check_greeter_then_user(world, h, ("greeter", "x11", None, None))


def test_greeter_by_pam_env(world):
    """XDG_SESSION_CLASS=greeter set by pam_env before the module: the same;
    type, seat and VT come from the PAM environment too."""
    start_gated(world)
    h = hold_with_pam_env(world, "user1", "greeter", timeout=8)
    check_greeter_then_user(world, h, ("greeter", "wayland", "seat0", 7))


def test_manager_classes_config(world):
    """manager_classes decides: with "user greeter" a greeter login starts
    (and waits for) the manager; a user session's default class is "user"."""
    start_gated(world, manager_classes="user greeter")
    p = world.popen(["pamtester", "-v", "dus-test", "user1", "open_session", "close_session"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_state(world, "user1", "starting")
        assert [s["class"] for s in world.sessions()] == ["user"]
        world.run(["sh", "-c", 'echo go > "$1"', "sh", GATE], check=True, timeout=10)
        p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0
    world.wait_for(lambda: world.users() == [], what="user1 forgotten")
    open_gate_later(world)  # the next start's gate
    h = hold_with_pam_env(world, "user1", "greeter", timeout=20)
    wait_state(world, "user1", "ready")
    assert [s["class"] for s in world.sessions()] == ["greeter"]
    h.release()


def test_bad_class_argument_ignored(world):
    """A class= value that is not a token is ignored (the module logs it):
    the session is a user session."""
    start_gated(world)
    open_gate_later(world)
    h = world.hold_pamtester("user1", timeout=20, module_args=["class=gre/x"])
    assert [s["class"] for s in world.sessions()] == ["user"]
    h.release()
