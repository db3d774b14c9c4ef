# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15, self-service: a non-root user may stop-user and restart-user
their own manager, enable-linger/disable-linger themselves when
user_linger = yes, and terminate-session their own sessions. The same
requests for another user are refused (a clear message, exit status 1 like
every refusal, see dinit-userservctl(1)) and change nothing.

Clients run as the user without a session of their own (setpriv), like a
script in the user's desktop would.
"""
import json

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

LINGER_DIR = sb.DEFAULT_CONFIG["linger_dir"]
BACKEND_PATH = sb.TEST_DIR + "/ready-backend"
BACKEND = """#!/bin/sh
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
"""


def start(world, **extra):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, BACKEND, mode=0o755)
    cfg = {"backend": BACKEND_PATH, "stop_delay": 0, "linger": "maybe"}
    cfg.update(extra)
    world.daemon = world.start_daemon(cfg)
    return world.daemon


def status(world, user):
    return world.ctl_json("status", user)


def refused(r):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "permission denied" in r.stderr, r.stderr


def test_stop_and_restart_own_manager_only(world):
    start(world)
    h1 = world.hold_pamtester("user1")
    h2 = world.hold_pamtester("user2")
    pid1 = status(world, "user1")["manager_pid"]
    pid2 = status(world, "user2")["manager_pid"]
    assert pid1 and pid2
    for cmd in ("stop-user", "restart-user"):
        refused(world.ctl(cmd, "user1", as_user="user2"))
        refused(world.ctl(cmd, str(world.user("user1")["uid"]), as_user="user2"))
        assert status(world, "user1")["manager_pid"] == pid1
        assert status(world, "user1")["state"] == "ready"
    # JSON refusals carry EPERM.
    r = world.ctl("--json", "restart-user", "user1", as_user="user2")
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 1

    r = world.ctl("restart-user", "user1", as_user="user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: status(world, "user1")["state"] == "ready" and
                   status(world, "user1")["manager_pid"] not in (None, pid1),
                   timeout=10, what="user1 restarted")
    r = world.ctl("stop-user", "user1", as_user="user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: status(world, "user1")["state"] == "stopped", timeout=10,
                   what="user1 stopped")
    # user2 untouched throughout.
    assert status(world, "user2")["manager_pid"] == pid2
    assert "stop-user user1" in world.daemon.log()
    h1.release()
    h2.release()


def test_linger_self_service_needs_user_linger(world):
    start(world)
    refused(world.ctl("enable-linger", "user1", as_user="user1"))
    assert not world.exists(LINGER_DIR + "/user1")
    world.daemon.stop()
    start(world, user_linger=True)
    refused(world.ctl("enable-linger", "user1", as_user="user2"))
    assert not world.exists(LINGER_DIR + "/user1")
    r = world.ctl("enable-linger", "user1", as_user="user1")
    assert r.returncode == 0, r.stderr
    assert world.exists(LINGER_DIR + "/user1")
    world.wait_for(lambda: status(world, "user1")["state"] == "ready", timeout=10,
                   what="user1 lingering manager")
    refused(world.ctl("disable-linger", "user1", as_user="user2"))
    assert world.exists(LINGER_DIR + "/user1")
    assert status(world, "user1")["state"] == "ready"
    r = world.ctl("disable-linger", "user1", as_user="user1")
    assert r.returncode == 0, r.stderr
    assert not world.exists(LINGER_DIR + "/user1")
    world.wait_for(lambda: world.users() == [], timeout=10, what="user1 gone")
    # Other changes stay root-only even with user_linger.
    for args in (["reload"], ["reexec"], ["stop-user", "user2"]):
        refused(world.ctl(*args, as_user="user1"))


def test_terminate_session(world):
    start(world)
    h1 = world.hold_pamtester("user1")
    h2 = world.hold_pamtester("user2")
    ids = {s["user"]: s["id"] for s in world.sessions()}
    refused(world.ctl("terminate-session", str(ids["user1"]), as_user="user2"))
    assert sorted(s["user"] for s in world.sessions()) == ["user1", "user2"]
    assert h1.proc.poll() is None
    r = world.ctl("terminate-session", "nonsense")
    assert r.returncode == 2
    r = world.ctl("terminate-session", "12345", as_user="user1")
    assert r.returncode == 1 and "no such session" in r.stderr

    r = world.ctl("terminate-session", str(ids["user1"]), as_user="user1")
    assert r.returncode == 0, r.stderr
    assert [s["user"] for s in world.sessions()] == ["user2"]
    assert h1.wait(10) != 0  # the login process was signalled
    # Root may end anyone's.
    r = world.ctl("terminate-session", str(ids["user2"]))
    assert r.returncode == 0, r.stderr
    assert world.sessions() == []
    assert h2.wait(10) != 0
