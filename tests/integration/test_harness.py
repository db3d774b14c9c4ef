# SPDX-License-Identifier: BSD-2-Clause
"""Self-tests of the sandbox harness: these need root but not the build.

They pin down what every other integration test relies on: a private world,
real users, real PAM stacks seen by real logins, held logins, reaping.
"""
import os
import re
import time

import sandbox as sb


def test_sandbox_is_private(sandbox):
    u = sandbox.add_user("harnessuser")
    assert u["uid"] >= 1000 and u["home"] == "/home/harnessuser"
    # Not on the host.
    with open("/etc/passwd") as f:
        assert "harnessuser:" not in f.read()
    assert not os.path.exists("/home/harnessuser")
    # PID 1 is our reaping init; this command sees a PID namespace of its own.
    r = sandbox.run(["cat", "/proc/1/cmdline"], check=True)
    assert "sandbox_init.py" in r.stdout
    # Fresh tmpfs on the private paths.
    r = sandbox.run(["stat", "-f", "-c", "%T", "/run", "/home", "/tmp", "/etc", "/var/lib",
                     "/dev/pts"], check=True)
    assert r.stdout.split() == ["tmpfs", "tmpfs", "tmpfs", "overlayfs", "overlayfs", "devpts"]
    # A devpts instance of our own: no host ptys in it.
    r = sandbox.run(["ls", "/dev/pts"], check=True)
    assert r.stdout.split() == ["ptmx"]
    r = sandbox.run(["ls", "-A", "/run"], check=True)
    assert set(r.stdout.split()) <= {"lock", "mount"}  # mount(8) keeps /run/mount/utab
    # Network: only lo, and it is up.
    r = sandbox.run(["ip", "-o", "link"], check=True)
    assert len(r.stdout.strip().splitlines()) == 1 and "lo:" in r.stdout
    assert "UP" in r.stdout
    # /dev/null is the device.
    r = sandbox.run("test -c /dev/null && echo ok", check=True)
    assert r.stdout.strip() == "ok"


def test_files_and_users(sandbox):
    sandbox.add_user("alice")
    sandbox.write_file("/home/alice/.config/x/y", "hello\n", mode=0o600, owner="alice")
    r = sandbox.run(["stat", "-c", "%U %a", "/home/alice/.config/x/y", "/home/alice/.config/x"],
                    check=True)
    assert r.stdout.split("\n")[:2] == ["alice 600", "alice 755"]
    assert sandbox.read_file("/home/alice/.config/x/y") == "hello\n"
    with open(sandbox.host_path("/home/alice/.config/x/y")) as f:
        assert f.read() == "hello\n"
    # as_user runs without a session, as that user with their groups.
    r = sandbox.run(sandbox.as_user("alice", ["id", "-un"]), check=True)
    assert r.stdout.strip() == "alice"


def test_command_deadline(sandbox):
    t0 = time.monotonic()
    try:
        sandbox.run(["sleep", "100"], timeout=1)
    except sb.CommandTimeout:
        pass
    else:
        raise AssertionError("no CommandTimeout")
    assert time.monotonic() - t0 < 8


def test_orphans_are_reaped(sandbox):
    # A double-forked process that exits leaves no zombie behind.
    sandbox.run("(sh -c 'exit 0' &) ; true", check=True)
    sandbox.wait_for(lambda: "Z" not in sandbox.run(["ps", "-eo", "stat="]).stdout.split(),
                     timeout=5, what="no zombies")


def test_real_logins_without_module(sandbox):
    """su -l, runuser -l, pamtester and pamlogin.py through real PAM stacks
    (the recorder only): each opens and closes a session with the right items."""
    sandbox.add_user("user1")
    sandbox.wire_logins(module=False)
    r = sandbox.su("user1", "id -un; echo $HOME", tty=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["user1", "/home/user1"]
    su_pid = r.login_pid
    r = sandbox.runuser("user1", "id -un")
    assert r.returncode == 0 and r.stdout.strip() == "user1", r.stderr
    r = sandbox.pamtester("dus-test", "user1")
    assert r.returncode == 0, r.stderr
    r = sandbox.pamlogin("dus-test", "user1", ["id", "-un"])
    assert r.returncode == 0, r.stderr
    assert "user1" in r.stdout.split("\n")
    items = sandbox.pam_items()
    got = [(i["type"], i["service"], i["user"]) for i in items]
    assert got == [
        ("open_session", "su-l", "user1"), ("close_session", "su-l", "user1"),
        ("open_session", "runuser-l", "user1"), ("close_session", "runuser-l", "user1"),
        ("open_session", "dus-test", "user1"), ("close_session", "dus-test", "user1"),
        ("open_session", "dus-test", "user1"), ("close_session", "dus-test", "user1"),
    ]
    # su on a pty reports it; the PAM session is opened by su's parent.
    assert items[0]["tty"] == "pts/0" or items[0]["tty"] == "/dev/pts/0"
    assert items[0]["pid"] == su_pid
    assert items[2]["tty"] == ""


def test_held_login_and_kill9(sandbox):
    sandbox.add_user("user1")
    sandbox.wire_logins(module=False)
    h = sandbox.hold_su("user1")
    assert h.tty == "/dev/pts/0"
    assert h.env["USER"] == "user1" and h.env["HOME"] == "/home/user1"
    r = sandbox.run(["ps", "-o", "comm=", "-p", str(h.pid)], check=True)
    assert r.stdout.strip() == "su"
    assert h.end() == 0
    assert "got:done" in h.post_output
    opened = [i for i in sandbox.pam_items() if i["type"] == "open_session"]
    closed = [i for i in sandbox.pam_items() if i["type"] == "close_session"]
    assert len(opened) == 1 and len(closed) == 1 and opened[0]["pid"] == h.pid

    h2 = sandbox.hold_runuser("user1")
    h2.kill9()
    assert h2.end() == 128 + 9
    opened = [i for i in sandbox.pam_items() if i["type"] == "open_session"]
    closed = [i for i in sandbox.pam_items() if i["type"] == "close_session"]
    assert len(opened) == 2 and len(closed) == 1  # a killed login closes nothing


def test_pamlogin_reports_fds(sandbox):
    sandbox.add_user("user1")
    sandbox.wire_logins(module=False)
    r = sandbox.pamlogin("dus-test", "user1", ["ls", "-l", "/proc/self/fd"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"^pamlogin-open 0$", r.stdout, re.M)
    assert re.search(r"^pamlogin-fds-added \{\}$", r.stdout, re.M)
    assert re.search(r"^pamlogin-close 0$", r.stdout, re.M)


def test_pamtester_hold(sandbox):
    sandbox.add_user("user1")
    h = sandbox.hold_pamtester("user1", items=["tty=tty7", "rhost=198.51.100.7"], module=False)
    items = sandbox.pam_items()
    assert [(i["type"], i["tty"], i["rhost"], i["pid"]) for i in items] == [
        ("open_session", "tty7", "198.51.100.7", h.pid)]
    r = sandbox.run(["ps", "-o", "comm=", "-p", str(h.pid)], check=True)
    assert r.stdout.strip() == "pamtester"
    assert h.release() == 0, h.output
    assert [i["type"] for i in sandbox.pam_items()] == ["open_session", "close_session"]

    h2 = sandbox.hold_pamtester("user1", module=False)
    h2.kill9()
    assert h2.wait() == 128 + 9 or h2.returncode == -9


def test_sandbox_has_its_own_cgroup(sandbox):
    """Everything inside runs in the sandbox's own cgroup2 subtree (daemons
    of concurrent sandboxes never share user cgroups); teardown removes it."""
    if not sandbox.cgroup:
        import pytest
        pytest.skip("no writable cgroup2 hierarchy")
    own = sandbox.cgroup.split("/")[-1]
    r = sandbox.run(["cat", "/proc/self/cgroup"], check=True)
    assert [l for l in r.stdout.splitlines() if l.startswith("0::")][0].endswith("/" + own)
    r = sandbox.run(["cat", "/proc/1/cgroup"], check=True)
    assert [l for l in r.stdout.splitlines() if l.startswith("0::")][0].endswith("/" + own)
    sandbox.run(["mkdir", sandbox.cgroup + "/sub"], check=True)
    sleeper = sandbox.popen(["sh", "-c", 'echo 0 > "$0" && echo moved && exec sleep 100',
                             sandbox.cgroup + "/sub/cgroup.procs"], stdout=sb.subprocess.PIPE)
    assert sb.LineReader(sleeper.stdout).readline(10) == "moved"
    with open(sandbox.cgroup + "/sub/cgroup.procs") as f:
        assert len(f.read().split()) == 1
    path = sandbox.cgroup
    sandbox.close()
    sandbox.unshare_pid = None
    assert not os.path.exists(path)
    sleeper.wait(10)
    sleeper.stdout.close()
