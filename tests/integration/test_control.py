# SPDX-License-Identifier: BSD-2-Clause
"""Issue 6 acceptance: dinit-userservctl, linger, stop_delay, reload, with real
logins and real managers.

The managers are runit's (real runsvdir, through the backend's scandir-exec)
with one service each, so that "the manager runs" is a real process tree of
the user. A manager is identified by its pid *and* its start time
(/proc/PID/stat), so a reused pid never passes for the same manager.
"""
import json
import re
import signal
import time

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

LINGER_DIR = sb.DEFAULT_CONFIG["linger_dir"]
CONFIG = {"backend": "runit", "stop_delay": 0, "stop_timeout": 5, "login_timeout": 20}


def add_service(world, user):
    home = world.user(user)["home"]
    world.write_file(home + "/.config/service/idle/run", "#!/bin/sh\nexec sleep 100000\n",
                     mode=0o755, owner=user)


@pytest.fixture
def cworld(world):
    for u in ("user1", "user2"):
        add_service(world, u)
    return world


def start(world, **extra):
    cfg = dict(CONFIG)
    cfg.update(extra)
    world.daemon = world.start_daemon(cfg)
    return world.daemon


def status(world, user):
    return world.ctl_json("status", user)


def known(world, user):
    return any(u["name"] == user for u in world.users())


def wait_state(world, user, state, timeout=10):
    last = {}

    def probe():
        last.clear()
        if known(world, user):
            last.update(status(world, user))
        return last.get("state") == state and dict(last)

    try:
        return world.wait_for(probe, timeout=timeout, what="%s %s" % (user, state))
    except sb.CommandTimeout:
        raise AssertionError("%s not %s within %s s: %r" % (user, state, timeout, last))


def wait_unknown(world, user, timeout=10):
    world.wait_for(lambda: not known(world, user), timeout=timeout,
                   what="%s no longer known" % user)


def proc(world, pid):
    """(start time, uid) of a process inside, or None when it is gone."""
    r = world.run(["sh", "-c", 'cat "/proc/$1/stat" && grep "^Uid:" "/proc/$1/status"',
                   "sh", str(pid)])
    if r.returncode != 0:
        return None
    stat_line, uid_line = r.stdout.splitlines()[:2]
    fields = stat_line.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19]), int(uid_line.split()[1])


def manager(world, user):
    """(pid, start time) of the user's running manager, checked to run as the user."""
    st = status(world, user)
    pid = st["manager_pid"]
    assert pid, st
    p = proc(world, pid)
    assert p is not None, "manager pid %d of %s is not running" % (pid, user)
    assert p[1] == world.user(user)["uid"], "manager %d runs as uid %d" % (pid, p[1])
    return pid, p[0]


def alive(world, mgr):
    p = proc(world, mgr[0])
    return p is not None and p[0] == mgr[1]


def user_procs(world, user):
    r = world.run(["pgrep", "-u", user])
    return r.stdout.split()


def linger_file(world, user):
    return world.run(["test", "-f", "%s/%s" % (LINGER_DIR, user)]).returncode == 0


# ---- linger -----------------------------------------------------------------------

def test_linger_lifecycle(cworld):
    """enable-linger: the manager runs without a session; logins and logouts
    leave it running; a daemon restart (SIGTERM, start) starts it again;
    disable-linger stops it."""
    world = cworld
    d = start(world)
    r = world.ctl("enable-linger", "user1")
    assert r.returncode == 0, r.stderr
    assert "user1" in r.stdout and r.stderr == ""
    assert linger_file(world, "user1")
    st = wait_state(world, "user1", "ready")
    assert st["linger"] is True and st["sessions"] == []
    assert world.sessions() == []
    mgr = manager(world, "user1")
    assert world.run(["pgrep", "-u", "user1", "-x", "runsvdir"]).returncode == 0
    assert world.run(["pgrep", "-u", "user1", "-x", "sleep"]).returncode == 0

    # Logins come and go; the manager stays, the same process.
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    h = world.hold_runuser("user1")
    assert manager(world, "user1") == mgr
    assert h.end() == 0
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    st = status(world, "user1")
    assert st["state"] == "ready" and st["sessions"] == []
    assert alive(world, mgr)

    # Daemon restart: SIGTERM stops every manager, lingering ones too; the
    # next daemon starts it again before it says ready.
    assert d.stop() == 0
    assert not alive(world, mgr)
    world.wait_for(lambda: user_procs(world, "user1") == [], what="no process of user1")
    d = start(world)
    st = status(world, "user1")
    assert st["state"] in ("starting", "ready") and st["linger"] is True, st
    st = wait_state(world, "user1", "ready")
    mgr2 = manager(world, "user1")
    assert mgr2 != mgr

    # disable-linger without sessions: stopped.
    r = world.ctl("disable-linger", "user1")
    assert r.returncode == 0, r.stderr
    assert not linger_file(world, "user1")
    wait_unknown(world, "user1")
    assert not alive(world, mgr2)
    world.wait_for(lambda: user_procs(world, "user1") == [], what="no process of user1")
    assert not world.exists("/run/user/%d" % world.user("user1")["uid"])
    assert d.running()


def test_linger_file_starts_manager_at_daemon_start(cworld):
    world = cworld
    world.makedirs(LINGER_DIR)
    world.write_file(LINGER_DIR + "/user2", "")
    start(world)
    # The daemon is ready only once lingering managers were started.
    st = status(world, "user2")
    assert st["linger"] is True and st["state"] in ("starting", "ready"), st
    wait_state(world, "user2", "ready")
    manager(world, "user2")
    assert not known(world, "user1")


def test_disable_linger_with_a_session_stops_after_logout(cworld):
    world = cworld
    start(world)
    assert world.ctl("enable-linger", "user1").returncode == 0
    wait_state(world, "user1", "ready")
    mgr = manager(world, "user1")
    h = world.hold_su("user1")
    r = world.ctl("disable-linger", "user1")
    assert r.returncode == 0, r.stderr
    st = status(world, "user1")
    assert st["linger"] is False and st["state"] == "ready"
    assert alive(world, mgr)
    assert h.end() == 0
    wait_unknown(world, "user1")
    assert not alive(world, mgr)


def test_linger_no_in_config(cworld):
    """linger = no: a mark has no effect (no manager without a session)."""
    world = cworld
    start(world, linger="no")
    r = world.ctl("enable-linger", "user1")
    assert r.returncode == 0, r.stderr
    assert "linger = no" in r.stdout
    world.wait_for(lambda: not known(world, "user1") or status(world, "user1")["manager_pid"] is None,
                   what="no manager")
    assert user_procs(world, "user1") == []


# ---- stop_delay ---------------------------------------------------------------------

def test_stop_delay(cworld):
    """A login within stop_delay keeps the same manager; after the last
    logout it is stopped once the delay has passed, not before."""
    world = cworld
    delay = 4
    d = start(world, stop_delay=delay)
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    assert h.end() == 0
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    st = status(world, "user1")
    assert st["state"] == "ready" and manager(world, "user1") == mgr
    h = world.hold_su("user1")
    assert manager(world, "user1") == mgr
    m = d.mark()
    assert h.end() == 0
    t0 = time.monotonic()
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    assert alive(world, mgr)
    d.wait_log(r"stopping the manager of user1", timeout=delay + 5, start=m)
    waited = time.monotonic() - t0
    assert waited >= delay - 1, "stopped %.1f s after the logout (stop_delay %d)" % (waited, delay)
    wait_unknown(world, "user1")
    assert not alive(world, mgr)


# ---- stop-user, restart-user ---------------------------------------------------------

def test_stop_user(cworld):
    """stop-user ends the manager; the user's session is still reported; a
    new login starts a fresh manager."""
    world = cworld
    start(world)
    uid = world.user("user1")["uid"]
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    sess = world.sessions()
    r = world.ctl("stop-user", "user1")
    assert r.returncode == 0, r.stderr
    assert "user1" in r.stdout
    st = wait_state(world, "user1", "stopped")
    assert st["manager_pid"] is None
    assert not alive(world, mgr)
    world.wait_for(lambda: world.run(["pgrep", "-u", "user1", "-x", "runsvdir"]).returncode != 0,
                   what="runsvdir of user1 gone")
    # The session is still there, and reported as such.
    assert world.sessions() == sess
    assert [s["pid"] for s in st["sessions"]] == [h.pid]
    u = [u for u in world.users() if u["name"] == "user1"]
    assert len(u) == 1 and u[0]["sessions"] == 1 and u[0]["state"] == "stopped", u
    # Its runtime directory stays while the session lasts.
    assert world.exists("/run/user/%d" % uid)
    # Stopping again: nothing to stop, not an error.
    r = world.ctl("stop-user", "user1")
    assert r.returncode == 0, r.stderr
    # A new login starts a fresh manager.
    h2 = world.hold_su("user1")
    st = wait_state(world, "user1", "ready")
    mgr2 = manager(world, "user1")
    assert mgr2 != mgr and len(st["sessions"]) == 2
    assert h.end() == 0
    assert h2.end() == 0
    wait_unknown(world, "user1")
    assert not alive(world, mgr2)


def test_restart_user(cworld):
    world = cworld
    start(world)
    uid = world.user("user1")["uid"]
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    sess = world.sessions()
    # USER may be given as a uid.
    r = world.ctl("restart-user", str(uid))
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: status(world, "user1")["manager_pid"] not in (None, mgr[0])
                   and status(world, "user1")["state"] == "ready", what="a new manager ready")
    mgr2 = manager(world, "user1")
    assert mgr2 != mgr
    assert not alive(world, mgr)
    assert world.sessions() == sess
    assert h.end() == 0
    wait_unknown(world, "user1")


def test_restart_lingering_user_without_sessions(cworld):
    world = cworld
    start(world)
    assert world.ctl("enable-linger", "user2").returncode == 0
    wait_state(world, "user2", "ready")
    mgr = manager(world, "user2")
    r = world.ctl("restart-user", "user2")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: status(world, "user2")["manager_pid"] not in (None, mgr[0])
                   and status(world, "user2")["state"] == "ready", what="a new manager ready")
    assert not alive(world, mgr)
    manager(world, "user2")


def test_restart_user_without_sessions_stops_after_stop_delay(cworld):
    """Issue 12 item 6: restart-user within stop_delay of the last logout
    gives a new manager that still stops stop_delay later (it ran forever:
    the stop-delay timer was disarmed and never armed again)."""
    world = cworld
    delay = 5
    d = start(world, stop_delay=delay)
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    assert h.end() == 0
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    r = world.ctl("restart-user", "user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: known(world, "user1") and
                   status(world, "user1")["manager_pid"] not in (None, mgr[0]) and
                   status(world, "user1")["state"] == "ready", what="a new manager ready")
    mgr2 = manager(world, "user1")
    m = d.mark()
    d.wait_log(r"stopping the manager of user1: last session ended", timeout=delay + 10,
               start=m)
    wait_unknown(world, "user1")
    assert not alive(world, mgr2)
    assert user_procs(world, "user1") == []


@pytest.mark.parametrize("cmd", ["stop-user", "restart-user", "status"])
def test_unknown_user(cworld, cmd):
    world = cworld
    start(world)
    for who in ("user1", "nosuchuser"):
        r = world.ctl(cmd, who)
        assert r.returncode == 1, (who, r.stdout, r.stderr)
        assert r.stdout == ""
        assert r.stderr.startswith("dinit-userservctl: ") and who in r.stderr, r.stderr
    assert world.users() == []


# ---- permissions ----------------------------------------------------------------------

CHANGES = [["enable-linger", "user2"], ["enable-linger", "user1"], ["disable-linger", "user2"],
           ["stop-user", "user2"], ["restart-user", "user2"], ["reload"], ["reexec"]]


def test_non_root_enable_linger_refused(cworld):
    """A non-root enable-linger user2 (setpriv, no PAM session): a clear
    message, exit status 1, and nothing changed: no linger file, no manager,
    no process of user2."""
    world = cworld
    d = start(world)
    m = d.mark()
    r = world.ctl("enable-linger", "user2", as_user="user1")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert re.match(r"dinit-userservctl: .*permission denied.*root", r.stderr, re.I), r.stderr
    r = world.ctl("--json", "enable-linger", "user2", as_user="user1")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"ok": False, "code": 1, "message": json.loads(r.stdout)["message"]}
    assert "permission denied" in json.loads(r.stdout)["message"]
    assert not world.exists(LINGER_DIR + "/user2")
    assert world.users() == []
    assert user_procs(world, "user2") == []
    assert not [l for l in d.log_lines()[m:] if "enable-linger" in l or "manager of user2" in l]
    # Control: root may.
    r = world.ctl("enable-linger", "user2")
    assert r.returncode == 0, r.stderr
    wait_state(world, "user2", "ready")


def test_non_root_changes_refused_and_nothing_changes(cworld):
    world = cworld
    d = start(world, stop_delay=0)
    assert world.ctl("enable-linger", "user2").returncode == 0
    wait_state(world, "user2", "ready")
    mgr = manager(world, "user2")
    cfg_before = world.read_file(d.config_path)
    world.write_file(d.config_path, cfg_before.replace("stop_delay = 0", "stop_delay = 77"))
    for who in ("user1", "user2"):
        for args in CHANGES:
            if args[0] in ("stop-user", "restart-user") and args[1] == who:
                continue  # self-service (issue 15): tests/integration/test_self_service.py
            r = world.ctl(*args, as_user=who)
            assert r.returncode == 1, (who, args, r.stdout, r.stderr)
            assert "permission denied" in r.stderr, (who, args, r.stderr)
    # Reading is open to everyone.
    r = world.ctl("--json", "list-users", as_user="user1")
    assert r.returncode == 0 and [u["name"] for u in json.loads(r.stdout)] == ["user2"]
    assert world.ctl("status", "user2", as_user="user1").returncode == 0
    # Nothing changed: same manager, still lingering, no mark for user1,
    # the config not reloaded, the daemon not re-executed.
    assert manager(world, "user2") == mgr
    assert linger_file(world, "user2") and not world.exists(LINGER_DIR + "/user1")
    assert status(world, "user2")["linger"] is True
    assert not known(world, "user1") and user_procs(world, "user1") == []
    assert d.running()
    log = d.log()
    assert "configuration reloaded" not in log and "re-exec" not in log.lower()


# ---- --json against the text output ----------------------------------------------------

def parse_table(text, ncols):
    """Rows of an aligned table (the last column may contain spaces)."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0].split()
    assert len(header) == ncols, lines[0]
    rows = []
    for l in lines[1:]:
        cells = l.split(None, ncols - 1)
        assert len(cells) == ncols, l
        rows.append(dict(zip(header, cells)))
    return rows


def local_time(world, t):
    return world.run(["date", "-d", "@%d" % t, "+%Y-%m-%d %H:%M:%S"], check=True).stdout.strip()


def age_seconds(text):
    m = re.fullmatch(r"(\d+)s|(\d+)m (\d+)s|(\d+)h (\d+)m|(\d+)d (\d+)h", text)
    assert m, text
    g = [int(x) if x else 0 for x in m.groups()]
    return g[0] + g[1] * 60 + g[2] + g[3] * 3600 + g[4] * 60 + g[5] * 86400 + g[6] * 3600


def dash(v):
    return "-" if v in (None, "") else str(v)


def test_json_matches_text(cworld):
    """list-users, list-sessions and status: the JSON documents parse and say
    what the text output says (same users, states, pids, sessions)."""
    world = cworld
    start(world)
    assert world.ctl("enable-linger", "user1").returncode == 0
    wait_state(world, "user1", "ready")
    a = world.hold_su("user2")
    b = world.hold_pamtester("user2", items=["tty=tty7", "rhost=192.0.2.9"])
    wait_state(world, "user2", "ready")

    users_txt = world.ctl("list-users")
    users = json.loads(world.ctl("--json", "list-users").stdout)
    assert users_txt.returncode == 0
    rows = parse_table(users_txt.stdout, 8)
    assert sorted(u["name"] for u in users) == ["user1", "user2"]
    assert len(rows) == len(users)
    by_name = {r["USER"]: r for r in rows}
    for u in users:
        row = by_name[u["name"]]
        assert row["UID"] == str(u["uid"])
        assert row["STATE"] == u["state"] == "ready"
        assert row["PID"] == dash(u["manager_pid"]) and u["manager_pid"]
        assert row["SESSIONS"] == str(u["sessions"])
        assert row["LINGER"] == ("yes" if u["linger"] else "no")
        assert row["BACKEND"] == u["backend"] == "runit"
        assert row["SINCE"] == local_time(world, u["since"])
        assert isinstance(u["restarts"], int) and u["rundir"] == "/run/user/%d" % u["uid"]
    assert {u["name"]: (u["sessions"], u["linger"]) for u in users} == {
        "user1": (0, True), "user2": (2, False)}

    t = time.time()
    sess_txt = world.ctl("list-sessions")
    sessions = json.loads(world.ctl("--json", "list-sessions").stdout)
    rows = parse_table(sess_txt.stdout, 11)
    assert sorted(s["pid"] for s in sessions) == sorted([a.pid, b.pid])
    assert sorted(int(r["PID"]) for r in rows) == sorted([a.pid, b.pid])
    by_id = {r["ID"]: r for r in rows}
    assert len(by_id) == len(sessions) == 2
    for s in sessions:
        row = by_id[str(s["id"])]
        assert (row["USER"], row["UID"], row["SERVICE"]) == (s["user"], str(s["uid"]), s["service"])
        assert (row["TTY"], row["RHOST"], row["PID"]) == (dash(s["tty"]), dash(s["rhost"]),
                                                          str(s["pid"]))
        assert abs(age_seconds(row["AGE"]) - (t - s["since"])) <= 5, (row, s)
        assert (row["CLASS"], row["TYPE"], row["SEAT"]) == (s["class"], dash(s["type"]),
                                                            dash(s["seat"]))
    held = [s for s in sessions if s["pid"] == b.pid][0]
    assert (held["tty"], held["rhost"], held["remote"]) == ("tty7", "192.0.2.9", True)

    for name in ("user1", "user2"):
        txt = world.ctl("status", name)
        assert txt.returncode == 0, txt.stderr
        st = json.loads(world.ctl("--json", "status", name).stdout)
        head, _, table = txt.stdout.partition("\n\n")
        kv = dict(re.match(r"([a-z ]+):\s+(.*)", l).groups() for l in head.splitlines())
        assert kv["user"] == st["name"] == name
        assert (kv["uid"], kv["gid"]) == (str(st["uid"]), str(st["gid"]))
        assert kv["state"] == st["state"]
        assert kv["manager pid"] == dash(st["manager_pid"])
        assert kv["backend"] == st["backend"]
        assert kv["since"].startswith(local_time(world, st["since"]))
        assert kv["restarts"] == str(st["restarts"])
        assert kv["last failure"] == (st["last_failure"] or "none")
        assert kv["rundir"] == (st["rundir"] or "none")
        assert kv["linger"] == ("yes" if st["linger"] else "no")
        assert kv["sessions"] == str(len(st["sessions"]))
        listed = [s for s in sessions if s["user"] == name]
        assert sorted(s["id"] for s in st["sessions"]) == sorted(s["id"] for s in listed)
        if st["sessions"]:
            rows = parse_table(table, 11)
            assert sorted(int(r["ID"]) for r in rows) == sorted(s["id"] for s in st["sessions"])
        else:
            assert table == ""

    # State-changing commands: the same message either way.
    txt = world.ctl("enable-linger", "user1")
    js = world.ctl("--json", "enable-linger", "user1")
    assert txt.returncode == js.returncode == 0
    assert json.loads(js.stdout) == {"ok": True, "code": 0, "message": txt.stdout.strip()}
    txt = world.ctl("stop-user", "nosuchuser")
    js = world.ctl("--json", "stop-user", "nosuchuser")
    assert txt.returncode == js.returncode == 1
    doc = json.loads(js.stdout)
    assert doc["ok"] is False and doc["code"] > 0
    assert txt.stderr == js.stderr == "dinit-userservctl: %s\n" % doc["message"]
    a.end()
    assert b.release() == 0


# ---- reload -----------------------------------------------------------------------------

def test_reload_bad_config_keeps_the_old_one(cworld):
    """reload (and SIGHUP) with a bad file: rejected with file:line, the old
    config stays in force (stop_delay still 0, although the bad file's
    earlier line sets 60)."""
    world = cworld
    d = start(world, stop_delay=0)
    good = sb.config_text(d.config)
    assert "stop_delay = 0\n" in good
    bad = good.replace("stop_delay = 0\n", "stop_delay = 60\n") + "no_such_key = 1\n"
    line = bad.count("\n")
    world.write_file(d.config_path, bad)
    m = d.mark()
    r = world.ctl("reload")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "%s:%d" % (d.config_path, line) in r.stderr and "no_such_key" in r.stderr, r.stderr
    d.wait_log(r"reload rejected.*%s:%d" % (re.escape(d.config_path), line), start=m)

    m = d.mark()
    world.write_file(d.config_path, good.replace("stop_delay = 0\n", "stop_delay = soon\n"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload rejected.*%s:\d+.*stop_delay" % re.escape(d.config_path), start=m)
    assert not [l for l in d.log_lines()[m:] if "configuration reloaded" in l]

    # Still stop_delay = 0: the manager stops at once after the logout.
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    assert h.end() == 0
    wait_unknown(world, "user1", timeout=5)
    assert not alive(world, mgr)
    assert d.running()


def test_sighup_good_config_applies_to_new_logins(cworld):
    world = cworld
    d = start(world, stop_delay=0)
    delay = 3
    cfg = dict(d.config, stop_delay=delay)
    world.write_file(d.config_path, sb.config_text(cfg))
    m = d.mark()
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", start=m)
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    m = d.mark()
    assert h.end() == 0
    t0 = time.monotonic()
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    assert status(world, "user1")["state"] == "ready" and alive(world, mgr)
    d.wait_log(r"stopping the manager of user1", timeout=delay + 5, start=m)
    assert time.monotonic() - t0 >= delay - 1
    wait_unknown(world, "user1")
    # And back through `reload`.
    world.write_file(d.config_path, sb.config_text(dict(cfg, stop_delay=0)))
    r = world.ctl("reload")
    assert r.returncode == 0 and "reloaded" in r.stdout, (r.stdout, r.stderr)
    h = world.hold_su("user1")
    mgr = manager(world, "user1")
    assert h.end() == 0
    wait_unknown(world, "user1", timeout=5)
    assert not alive(world, mgr)


# ---- exit statuses ------------------------------------------------------------------------

USAGE_ERRORS = [
    [], ["bogus"], ["status"], ["enable-linger"], ["status", "user1", "extra"],
    ["list-users", "extra"], ["--bogus", "list-users"], ["-x", "list-users"],
    ["--json=yes", "list-users"], ["list-users", "--socket"], ["--socket", "", "list-users"],
    ["stop-user", ""],
]


@pytest.mark.parametrize("running", [True, False], ids=["daemon", "no-daemon"])
def test_usage_errors_exit_2(world, running):
    if running:
        start(world)
    for args in USAGE_ERRORS:
        r = world.run([sb.CTL] + args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stdout == "", args
        assert r.stderr.startswith("dinit-userservctl: ") and "--help" in r.stderr, (args, r.stderr)
    r = world.run([sb.CTL, "--help"])
    assert r.returncode == 0 and "enable-linger" in r.stdout


@pytest.mark.parametrize("how", ["never-started", "killed", "stopped"])
def test_daemon_not_running_exit_3(world, how):
    if how != "never-started":
        d = start(world)
        if how == "killed":
            d.kill()
            assert world.exists(sb.DEFAULT_SOCKET)  # stale: nobody listens
        else:
            assert d.stop() == 0
    for args in (["list-users"], ["list-sessions"], ["status", "user1"],
                 ["enable-linger", "user1"], ["reload"]):
        for js in ([], ["--json"]):
            r = world.ctl(*(js + args))
            assert r.returncode == 3, (args, r.stdout, r.stderr)
            assert r.stdout == ""
            assert r.stderr.startswith("dinit-userservctl: ") and r.stderr.count("\n") >= 1
    # Through a socket path of one's own, too.
    r = world.ctl("list-users", socket="/run/nothing-here.sock")
    assert r.returncode == 3 and "/run/nothing-here.sock" in r.stderr, r.stderr
    assert not world.exists(LINGER_DIR + "/user1")


def test_empty_lists(world):
    start(world)
    r = world.ctl("list-users")
    assert (r.returncode, r.stdout) == (0, "no users\n")
    r = world.ctl("list-sessions")
    assert (r.returncode, r.stdout) == (0, "no sessions\n")
    assert world.ctl_json("list-users") == [] and world.ctl_json("list-sessions") == []


@pytest.mark.parametrize("who", ["nosuchuser", "root", "0"])
def test_enable_linger_refused_for_bad_users(cworld, who):
    """An unknown user, or root (root_session = no): refused, no mark, no manager."""
    world = cworld
    start(world)
    r = world.ctl("enable-linger", who)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.startswith("dinit-userservctl: ")
    assert world.run(["sh", "-c", 'ls -A "$1" 2>/dev/null', "sh", LINGER_DIR]).stdout == ""
    assert world.users() == []


def test_status_text_of_a_stopped_manager(cworld):
    world = cworld
    start(world)
    h = world.hold_su("user1")
    assert world.ctl("stop-user", "user1").returncode == 0
    wait_state(world, "user1", "stopped")
    r = world.ctl("status", "user1")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^state:\s+stopped$", r.stdout, re.M), r.stdout
    assert re.search(r"^manager pid:\s+-$", r.stdout, re.M), r.stdout
    assert re.search(r"^sessions:\s+1$", r.stdout, re.M), r.stdout
    assert re.search(r"^\s*\d+\s+user1\s+\d+\s+su-l\s", r.stdout, re.M), r.stdout
    assert world.ctl_json("status", "user1")["manager_pid"] is None
    assert h.end() == 0
