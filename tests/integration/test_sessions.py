# SPDX-License-Identifier: BSD-2-Clause
"""Issue 3 acceptance: sessions of real logins, tracked by the daemon (backend none).

Every test runs in its own sandbox (conftest.py): users user1 and user2, the
login services su, su-l, runuser, runuser-l and dus-test wired to the built
module, and (fixture daemon) the daemon with the harness's default config.
"""
import os
import re
import signal
import struct
import time

import pytest

import dusproto as wire
import sandbox as sb

pytestmark = pytest.mark.needs_build


def only(items, what):
    assert len(items) == 1, "expected exactly one %s, got %r" % (what, items)
    return items[0]


def opened_items(world, pid):
    """What the PAM stack of the login with this pid saw at open_session."""
    return only([i for i in world.pam_items() if i["type"] == "open_session" and i["pid"] == pid],
                "recorded open_session of pid %d" % pid)


def wait_no_sessions(world, timeout=5):
    return world.wait_for(lambda: world.sessions() == [], timeout=timeout, what="no sessions")


# ---- sessions visible while open, gone after --------------------------------

@pytest.mark.parametrize("login", ["su", "runuser", "pamlogin"])
def test_held_login_is_listed_while_open(world, daemon, login):
    """su -l / runuser -l / a display-manager-like login on a pty: the session
    is listed with the user, the PAM service and the tty the login set, the
    pid that opened it, and no longer listed after logout."""
    uid = world.user("user1")["uid"]
    assert world.sessions() == []
    if login == "su":
        h, service = world.hold_su("user1"), "su-l"
    elif login == "runuser":
        h, service = world.hold_runuser("user1"), "runuser-l"
    else:
        h, service = world.hold_pamlogin("dus-test", "user1"), "dus-test"
    seen = opened_items(world, h.pid)
    assert seen["service"] == service and seen["user"] == "user1"
    # su and runuser set PAM_TTY from their stdin (the pty), pamlogin.py too.
    assert seen["tty"] in ("pts/0", "/dev/pts/0"), seen
    assert h.tty == "/dev/pts/0"

    s = only(world.sessions(), "session")
    assert s["user"] == "user1"
    assert s["uid"] == uid
    assert s["service"] == service
    assert s["tty"] == seen["tty"]
    assert s["pid"] == h.pid
    assert s["remote"] is False
    assert s["rhost"] in (None, "")
    u = only(world.users(), "user")
    assert (u["name"], u["uid"], u["sessions"]) == ("user1", uid, 1)

    assert h.end() == 0
    assert "got:done" in h.post_output
    wait_no_sessions(world)


def test_renamed_account_is_resolved_again_at_the_first_login(world):
    """Issue 12 item 9: the known-user cache answered a name with the uid it
    had when the object was made. user1 logs in and out (its object lives on
    for stop_delay), is renamed, and a new account takes the name user1: the
    next login of user1 is the new uid's, with the new uid's runtime dir, and
    the old object goes by the old account's new name."""
    d = world.start_daemon({"stop_delay": 60})
    old = world.user("user1")
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    assert [(u["name"], u["uid"]) for u in d.users()] == [("user1", old["uid"])]
    world.run(["usermod", "-l", "user1old", "-d", "/home/user1old", "-m", "user1"], check=True)
    world.run(["groupmod", "-n", "user1old", "user1"], check=True)
    new = world.add_user("user1")
    assert new["uid"] != old["uid"]
    r = world.su("user1", "id -u; echo $XDG_RUNTIME_DIR; echo $HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(new["uid"]), "/run/user/%d" % new["uid"], "/home/user1"]
    users = sorted((u["name"], u["uid"]) for u in d.users())
    assert users == sorted([("user1", new["uid"]), ("user1old", old["uid"])]), users
    st = world.run(["stat", "-c", "%u %a", "/run/user/%d" % new["uid"]], check=True)
    assert st.stdout.split() == [str(new["uid"]), "700"]


def test_su_and_runuser_one_shot_sessions(world, daemon):
    """su -l user1 -c CMD and runuser -l user2 -c CMD: the session exists while
    CMD runs (CMD itself lists it) and is gone after the login returned."""
    cmd = "%s --socket %s --json list-sessions" % (sb.CTL, sb.DEFAULT_SOCKET)
    for login, user, service in (("su", "user1", "su-l"), ("runuser", "user2", "runuser-l")):
        r = getattr(world, login)(user, cmd, tty=True)
        assert r.returncode == 0, r.stderr
        listed = wire_json(r.stdout)
        s = only(listed, "session listed from inside the login")
        assert (s["user"], s["service"]) == (user, service)
        assert s["pid"] == r.login_pid
        assert s["tty"] == opened_items(world, r.login_pid)["tty"] != ""
        assert world.sessions() == []


def wire_json(text):
    import json
    start = text.index("[")
    return json.loads(text[start:])


def test_pamtester_session_listed_while_open(world, daemon):
    """pamtester open_session close_session, held inside pam_open_session after
    the module: listed with its service, tty and rhost items; gone after."""
    h = world.hold_pamtester("user2", items=["tty=tty7", "rhost=198.51.100.7"])
    s = only(world.sessions(), "session")
    assert s["user"] == "user2"
    assert s["uid"] == world.user("user2")["uid"]
    assert s["service"] == h.service
    assert s["tty"] == "tty7"
    assert s["rhost"] == "198.51.100.7"
    assert s["remote"] is True
    assert s["pid"] == h.pid
    assert h.release() == 0, h.output
    assert world.sessions() == []


def test_pamtester_one_shot(world, daemon):
    m = daemon.mark()
    r = world.pamtester("dus-test", "user1")
    assert r.returncode == 0, r.stderr
    assert "successfully opened a session" in r.stdout + r.stderr
    assert world.sessions() == []
    assert world.users() == [] or all(u["sessions"] == 0 for u in world.users())
    # The daemon did see it (not a no-op because the module never got there).
    daemon.wait_log(r"user1", start=m)


def test_session_open_and_close_are_logged(world, daemon):
    m = daemon.mark()
    h = world.hold_su("user1")
    opened = daemon.wait_log(r"user1", start=m)
    m2 = daemon.mark()
    h.end()
    wait_no_sessions(world)
    closed = daemon.wait_log(r"user1|uid[ =]%d" % world.user("user1")["uid"], start=m2)
    assert opened != closed


def test_two_sessions_one_user(world, daemon):
    uid = world.user("user1")["uid"]
    a = world.hold_su("user1")
    b = world.hold_runuser("user1")
    u = only(world.users(), "user")
    assert (u["name"], u["uid"], u["sessions"]) == ("user1", uid, 2)
    sessions = world.sessions()
    assert sorted(s["pid"] for s in sessions) == sorted([a.pid, b.pid])
    assert {s["service"] for s in sessions} == {"su-l", "runuser-l"}
    assert len({s["id"] for s in sessions}) == 2
    st = world.ctl_json("status", "user1")
    assert st["name"] == "user1" and len(st["sessions"]) == 2

    assert a.end() == 0
    world.wait_for(lambda: [s["pid"] for s in world.sessions()] == [b.pid], what="one left")
    u = only(world.users(), "user")
    assert u["sessions"] == 1
    assert b.end() == 0
    wait_no_sessions(world)


def test_two_users(world, daemon):
    a = world.hold_su("user1")
    b = world.hold_su("user2")
    users = {u["name"]: u["sessions"] for u in world.users()}
    assert users == {"user1": 1, "user2": 1}
    a.end()
    b.end()
    wait_no_sessions(world)


# ---- a login that dies --------------------------------------------------------

@pytest.mark.parametrize("login", ["su", "pamtester"])
def test_killed_login_session_gone_within_1s(world, daemon, login):
    if login == "su":
        h = world.hold_su("user1")
    else:
        h = world.hold_pamtester("user1")
    s = only(world.sessions(), "session")
    assert s["pid"] == h.pid
    t0 = time.monotonic()
    h.kill9()
    world.wait_for(lambda: world.sessions() == [], timeout=1.0,
                   what="session of the killed login gone")
    assert time.monotonic() - t0 < 1.0
    assert daemon.running()
    # The daemon still works for the next login.
    r = world.su("user1", "true")
    assert r.returncode == 0


# ---- no daemon -----------------------------------------------------------------

@pytest.mark.parametrize("state", ["never-started", "killed"])
def test_login_without_daemon_is_fast(world, state):
    if state == "killed":
        d = world.start_daemon()
        assert d.kill() == -signal.SIGKILL
        # A stale socket: connect gets ECONNREFUSED rather than ENOENT.
        assert world.exists(sb.DEFAULT_SOCKET)
    else:
        assert not world.exists(sb.DEFAULT_SOCKET)
    for _ in range(3):
        r = world.su("user1", "true")
        assert r.returncode == 0, r.stderr
        assert r.elapsed < 1.0, "su -l took %.3f s" % r.elapsed
    r = world.su("user1", "id -un", tty=True)
    assert r.returncode == 0 and r.stdout.strip() == "user1"
    # The login really went through the module's stack.
    assert opened_items(world, r.login_pid)["service"] == "su-l"


# ---- unprivileged and malformed clients ----------------------------------------

def test_root_wire_client_control(world, daemon):
    """The Python wire client speaks the protocol: as root, OPEN_SESSION is
    accepted (the control for the tests below)."""
    out = world.proto(daemon.socket, "open", "user1", "dus-proto", "")
    last = out["replies"][-1]
    assert last["type"] == "OPEN_REPLY" and last["status"] == wire.OPEN_READY, out
    s = only(out["sessions_while_open"], "session")
    assert (s["user"], s["service"]) == ("user1", "dus-proto")
    assert out["close"]["type"] == "RESULT" and out["close"]["code"] == 0, out
    assert out["sessions_after"] == []


@pytest.mark.parametrize("target", ["user1", "user2", "root"])
def test_non_root_open_session_refused(world, daemon, target):
    out = world.proto(daemon.socket, "open", target, "dus-proto", "", as_user="user1")
    replies = out["replies"]
    assert replies[0]["type"] in ("RESULT", "EOF"), out
    if replies[0]["type"] == "RESULT":
        assert replies[0]["code"] > 0 and replies[0]["message"], out
    assert not any(r["type"] == "OPEN_REPLY" for r in replies), out
    assert out["sessions_while_open"] == []
    assert world.sessions() == []
    assert world.users() == [] or all(u["sessions"] == 0 for u in world.users())
    assert daemon.running()


def bad_packets():
    good = wire.encode(wire.OPEN_SESSION, user="user1", service="dus-bad", tty="pts/9")
    assert wire.decode(good)["user"] == "user1"
    hdr = struct.pack("<HH", wire.VERSION, wire.OPEN_SESSION)
    rnd = bytes((i * 131 + 17) % 256 for i in range(300))
    cases = {
        "empty": b"",
        "one byte": b"\x01",
        "header only": hdr,
        "truncated in a length": good[:5],
        "truncated in a string": good[:9],
        "truncated by one": good[:-1],
        "trailing byte": good + b"\x00",
        "version 0": struct.pack("<HH", 0, wire.OPEN_SESSION) + good[4:],
        "version 1 (older)": struct.pack("<HH", 1, wire.OPEN_SESSION) + good[4:],
        "version 3": struct.pack("<HH", 3, wire.OPEN_SESSION) + good[4:],
        "version ffff": struct.pack("<HH", 0xFFFF, wire.OPEN_SESSION) + good[4:],
        "type 0": struct.pack("<HH", wire.VERSION, 0) + good[4:],
        "type 14": struct.pack("<HH", wire.VERSION, 14),
        "type ffff": struct.pack("<HH", wire.VERSION, 0xFFFF),
        "string length past the end": hdr + struct.pack("<H", 0xFFFF) + b"user1",
        "user too long for its field": wire.encode(wire.OPEN_SESSION, user="u" * 256),
        "service too long": wire.encode(wire.OPEN_SESSION, user="user1", service="s" * 128),
        "control character": wire.encode(wire.OPEN_SESSION, user="user1\n"),
        "NUL in a string": wire.encode(wire.OPEN_SESSION, user=b"user1\x00x"),
        "unknown flag": wire.encode(wire.OPEN_SESSION, user="user1", flags=0x80),
        "class not a token": wire.encode(wire.OPEN_SESSION, user="user1", session_class="a b"),
        "vtnr out of range": wire.encode(wire.OPEN_SESSION, user="user1", vtnr=65536),
        "oversized 4097": good + b"\x00" * (4097 - len(good)),
        "oversized 64k": good + b"\x00" * (65536 - len(good)),
        "garbage": rnd,
        "garbage with a header": hdr + rnd,
        "reply type to the daemon": wire.encode(wire.OPEN_REPLY, status=0, session_id=1),
        "END to the daemon": wire.encode(wire.END),
        "list with trailing bytes": wire.encode(wire.LIST_SESSIONS) + b"x",
        "close truncated": wire.encode(wire.CLOSE_SESSION, session_id=1)[:-3],
    }
    return cases


def test_malformed_packets_rejected(world, daemon):
    """As root (who may open sessions): every malformed packet gets an error
    RESULT or the connection closed, never a session; the daemon keeps
    serving."""
    cases = bad_packets()
    names = list(cases)
    out = world.proto(daemon.socket, "raw", "-", timeout=120,
                      input="\n".join(cases[n].hex() for n in names))
    assert out["serving"], out
    problems = []
    for name, r in zip(names, out["results"]):
        replies = r["replies"]
        if r["error"] and r["error"].startswith("connect"):
            problems.append("%s: %s" % (name, r["error"]))
        elif replies:
            if replies[0]["type"] != "RESULT" or replies[0]["code"] <= 0 or len(replies) > 1:
                problems.append("%s: replies %r" % (name, replies))
        elif not r["eof"]:
            problems.append("%s: neither an error reply nor the connection closed" % name)
    assert problems == []
    assert world.sessions() == []
    assert daemon.running()
    # Still serving real logins.
    h = world.hold_su("user1")
    assert only(world.sessions(), "session")["pid"] == h.pid
    h.end()


def test_many_bad_clients_then_login(world, daemon):
    """A burst of garbage from an unprivileged user does not stop root's logins."""
    cases = bad_packets()
    packets = [cases[n].hex() for n in cases] * 4
    out = world.proto(daemon.socket, "raw", "-", as_user="user2", timeout=300,
                      input="\n".join(packets))
    assert out["serving"]
    for r in out["results"]:
        assert not any(m["type"] == "OPEN_REPLY" for m in r["replies"])
    r = world.su("user1", "true")
    assert r.returncode == 0 and r.elapsed < 2
    assert world.sessions() == []


# ---- nothing of the module in the user's session ---------------------------------

def fd_lines(text):
    return [l for l in text.splitlines() if re.match(r"^l[-rwx]{9}", l)]


def test_no_module_fd_in_su_login_shell(world, daemon):
    cmd = "ls -l /proc/self/fd; echo SESSIONS; %s --socket %s --json list-sessions" % (
        sb.CTL, sb.DEFAULT_SOCKET)
    r = world.su("user1", cmd, tty=True)
    assert r.returncode == 0, r.stderr
    fds, _, listed = r.stdout.partition("SESSIONS")
    lines = fd_lines(fds)
    assert len(lines) >= 3  # 0 1 2 and ls's own directory fd
    assert not [l for l in lines if "socket:" in l], fds
    # The session was open while the shell ran (the module did its work).
    assert only(wire_json(listed), "session")["pid"] == r.login_pid


def test_no_module_fd_without_pam_end(world, daemon):
    """A login that execs the user's command without pam_end (display-manager
    style): the module left no fd behind, not even a CLOEXEC one."""
    r = world.pamlogin("dus-test", "user1", ["sh", "-c", "ls -l /proc/self/fd; echo SESSIONS; "
                       "%s --socket %s --json list-sessions" % (sb.CTL, sb.DEFAULT_SOCKET)])
    assert r.returncode == 0, r.stderr
    assert re.search(r"^pamlogin-open 0$", r.stdout, re.M)
    assert re.search(r"^pamlogin-fds-added \{\}$", r.stdout, re.M), r.stdout
    assert re.search(r"^pamlogin-close 0$", r.stdout, re.M)
    fds, _, listed = r.stdout.partition("SESSIONS")
    assert not [l for l in fd_lines(fds) if "socket:" in l], fds
    listed = listed.split("pamlogin-close")[0]
    assert only(wire_json(listed), "session")["service"] == "dus-test"
    assert world.sessions() == []


# ---- daemon lifecycle --------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(world, daemon, sig):
    h = world.hold_su("user1")
    assert len(world.sessions()) == 1
    daemon.signal(sig)
    assert daemon.wait(10) == 0
    # The login is unaffected and its logout does not hang without the daemon.
    t0 = time.monotonic()
    assert h.end() == 0
    assert time.monotonic() - t0 < 2


def test_sigterm_idle_exits_zero(world, daemon):
    assert daemon.stop() == 0
    r = world.su("user1", "true")
    assert r.returncode == 0 and r.elapsed < 1.0


@pytest.mark.parametrize("nofile", [(1024, None), (1024, 1024)], ids=["soft1024", "hard1024"])
def test_idle_connections_do_not_exhaust_the_daemon(world, nofile):
    """Under a service's fd limit (soft 1024; or hard 1024, which the daemon
    cannot raise), an unprivileged user holding 1100 idle connections does
    not stop root's logins, and the daemon lives on."""
    d = world.start_daemon(nofile=nofile)
    r = world.run(["grep", "Max open files", "/proc/%d/limits" % d.pid], check=True)
    soft, hard = (int(x) for x in r.stdout.split()[3:5])
    assert soft >= 1024
    if nofile[1] is not None:
        assert (soft, hard) == (1024, 1024)
    hog = world.popen(world.as_user("user2", [sb.PYTHON, sb.DUSPROTO, d.socket, "hog", "1100"]),
                      timeout=120, stdin=sb.subprocess.PIPE, stdout=sb.subprocess.PIPE,
                      stderr=sb.subprocess.STDOUT)
    reader = sb.LineReader(hog.stdout)
    first = reader.readline(60)
    assert first and first.startswith('{"opened"'), first
    hs = [world.hold_su("user%d" % (i % 2 + 1)) for i in range(4)]
    assert sorted(s["pid"] for s in world.sessions()) == sorted(h.pid for h in hs)
    r = world.su("user1", "true")
    assert r.returncode == 0 and r.elapsed < 2
    for h in hs:
        assert h.end() == 0
    wait_no_sessions(world)
    hog.stdin.close()
    rest = reader.read_rest(30)
    assert hog.wait(30) == 0, rest
    assert d.running()
    assert world.sessions() == []
