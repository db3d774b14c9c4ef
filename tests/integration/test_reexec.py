# SPDX-License-Identifier: BSD-2-Clause
"""Issues 12 (item 3) and 20: reexec that fails, and reexec beside logins.

* A failed exec (the daemon's binary replaced by a file the kernel cannot
  execute) changes nothing: every fd of the daemon is the same, a login
  waiting for its manager keeps waiting and is answered, and each logout
  ends only its own session. `reexec` fails with the reason.
* The PAM module takes no final reply that names another session than its
  WAIT did (a fake daemon sends one).
* One daemon per state_dir: a second one refuses to start.

The backend is a custom program (BACKEND below): ready at once, unless a
FIFO gate for the user exists, which it reads first (a login waits until
the test writes a line into it).
"""
import json
import os
import re
import subprocess
import time

import pytest

import sandbox as sb
from backend_fixtures import daemon_fds

pytestmark = pytest.mark.needs_build

BACKEND = sb.TEST_DIR + "/gated-backend"
BACKEND_SH = """#!/bin/sh
gate=%s/gate-$USER
[ -p "$gate" ] && read -r line < "$gate"
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
""" % sb.TEST_DIR


def gated_world(world):
    world.write_file(BACKEND, BACKEND_SH, mode=0o755)


def make_gate(world, user):
    gate = "%s/gate-%s" % (sb.TEST_DIR, user)
    world.run(["mkfifo", "-m", "0666", gate], check=True)
    return gate


def open_gate(world, gate):
    world.run(["sh", "-c", "echo go > %s && rm -f %s" % (gate, gate)], timeout=10, check=True)


def wait_fds(world, d, want, what):
    """The daemon's fds become exactly want (a client that just left may
    still be closing on its side): returns the last map seen."""
    try:
        world.wait_for(lambda: daemon_fds(d) == want, timeout=5, what=what)
    except sb.CommandTimeout:
        pass
    return daemon_fds(d)


def test_failed_exec_changes_nothing(world):
    gated_world(world)
    binary = sb.TEST_DIR + "/sbin/dinit-userservd"
    world.makedirs(sb.TEST_DIR + "/sbin")
    world.run(["cp", sb.DAEMON, binary], check=True)
    d = world.start_daemon({"backend": BACKEND, "login_timeout": 30}, binary=binary)
    uid1, uid2 = world.user("user1")["uid"], world.user("user2")["uid"]

    h1 = world.hold_su("user1")  # live
    gate = make_gate(world, "user2")
    m = d.mark()
    login2 = world.popen(["su", "-l", "user2", "-c", "echo XDG=$XDG_RUNTIME_DIR"],
                         timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    d.wait_log(r"started the manager of user2", start=m)
    world.wait_for(lambda: len(world.sessions()) == 2, what="two sessions")
    sessions = {s["user"]: s["id"] for s in world.sessions()}
    # Settled: the listening socket and user2's waiting login are the only
    # connections left (the CLI's have been closed on the daemon's side too).
    world.wait_for(lambda: sum(v.startswith("socket:") for v in daemon_fds(d).values()) == 2,
                   what="two sockets: listening, user2's login")
    before = daemon_fds(d)

    # A half-written upgrade: the path now names a file that is no program.
    world.write_file(binary + ".new", "not a program\n", mode=0o755)
    world.run(["mv", "-f", binary + ".new", binary], check=True)
    m = d.mark()
    r = d.ctl("reexec")
    assert r.returncode != 0, r.stdout
    assert "Exec format error" in r.stderr, r.stderr
    d.wait_log(r"execv %s: Exec format error: this image carries on" % re.escape(binary),
               start=m)
    assert d.running()
    after = wait_fds(world, d, before, "the same fds as before the reexec")
    assert after == before, "fds before %r, after %r" % (before, after)
    assert {s["user"]: s["id"] for s in world.sessions()} == sessions
    assert not world.exists("/run/dinit-userservd/handover")

    # user2's login still waits on its connection, and is answered.
    assert login2.poll() is None, login2.communicate()[0]
    assert [u["state"] for u in world.users() if u["name"] == "user2"] == ["starting"]
    m = d.mark()
    open_gate(world, gate)
    out, _ = login2.communicate(timeout=20)
    assert login2.returncode == 0, out
    assert out.decode().split() == ["XDG=/run/user/%d" % uid2], out
    d.wait_log(r"manager of user2 is ready", start=m)
    d.wait_log(r"session %d closed: user user2" % sessions["user2"], start=m)
    world.wait_for(lambda: not world.exists("/run/user/%d" % uid2), what="user2's rundir gone")
    # user1 untouched by user2's logout.
    assert [s["id"] for s in world.sessions()] == [sessions["user1"]]
    assert world.exists("/run/user/%d" % uid1)
    assert [u["state"] for u in world.users()] == ["ready"]

    assert h1.end() == 0
    world.wait_for(lambda: world.users() == [], what="no user left")
    assert not world.exists("/run/user/%d" % uid1)
    closed = [l for l in d.log_lines() if re.search(r"session \d+ closed", l)]
    assert len(closed) == 2, closed
    assert d.stop() == 0


# A fake daemon: answers OPEN_SESSION with WAIT for session 100, then a final
# READY for session 200 (meant for another login); records CLOSE_SESSION.
FAKE_DAEMON = r"""
import json, os, socket, sys
sys.path.insert(0, sys.argv[2])
import dusproto as wire
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path + ".new")
os.rename(path + ".new", path)
srv.listen(4)
srv.settimeout(20)
got = []
while not any(m["type"] == "CLOSE_SESSION" for m in got):
    c, _ = srv.accept()
    c.settimeout(20)
    m = wire.decode(c.recv(4096))
    got.append(m)
    if m["type"] == "OPEN_SESSION":
        c.send(wire.encode(wire.OPEN_REPLY, status=wire.OPEN_WAIT, session_id=100,
                           timeout_ms=10000, rundir="/run/user/1000"))
        c.send(wire.encode(wire.OPEN_REPLY, status=wire.OPEN_READY, session_id=200,
                           rundir="/run/user/2000"))
    else:
        c.send(wire.encode(wire.RESULT, code=0, message="session closed"))
    c.close()
print(json.dumps(got))
"""


def test_module_rejects_a_final_reply_for_another_session(world):
    sock = sb.TEST_DIR + "/fake.sock"
    world.write_file(sb.TEST_DIR + "/fake-daemon.py", FAKE_DAEMON)
    world.write_pam_service("dus-fake", world.pam_stack(socket=sock))
    fake = world.popen([sb.PYTHON, sb.TEST_DIR + "/fake-daemon.py", sock, sb.HERE],
                       timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    world.wait_for(lambda: world.exists(sock), what="fake daemon listening")
    r = world.pamtester("dus-fake", "user1", "open_session", "close_session")
    out, err = fake.communicate(timeout=30)
    assert fake.returncode == 0, err
    got = json.loads(out)
    assert [m["type"] for m in got] == ["OPEN_SESSION", "CLOSE_SESSION"], got
    # The session the module closes is the one its WAIT named, never the
    # one of the stray final reply.
    assert got[1]["session_id"] == 100, got
    assert r.returncode == 0, r.stdout + r.stderr  # optional: the login goes on


def test_second_daemon_on_the_same_state_dir_refuses(world):
    d1 = world.start_daemon()
    d2 = world.start_daemon({"socket_path": sb.TEST_DIR + "/second.sock"}, wait_ready=False)
    d2.wait_log(r"cannot lock /run/dinit-userservd/lock: another dinit-userservd runs "
                r"with this state_dir")
    assert d2.wait(10) == 1
    assert not world.exists(sb.TEST_DIR + "/second.sock")
    assert d1.running() and world.sessions() == []
    assert d1.stop() == 0


# ---- issue 20: what the new image needs, and when it cannot run ------------------

def test_reexec_refused_when_the_config_no_longer_loads(world):
    d = world.start_daemon()
    h = world.hold_su("user1")
    world.write_file(d.config_path, "no_such_key = 1\n")
    m = d.mark()
    r = d.ctl("reexec")
    assert r.returncode != 0
    assert re.search(r"not re-executing: .*dinit-userservd.conf:1", r.stderr), r.stderr
    assert d.running() and "re-executing" not in "\n".join(d.log_lines()[m:])
    assert [s["user"] for s in world.sessions()] == ["user1"]
    assert h.end() == 0
    assert d.stop() == 0


def test_new_image_that_exits_leaves_state_a_restart_adopts(world):
    """The new image runs but exits at once (a broken upgrade): the managers
    and sessions keep running, and a daemon started again (what dinit's
    restart = true does) takes each of them over."""
    gated_world(world)
    binary = sb.TEST_DIR + "/sbin/dinit-userservd"
    world.makedirs(sb.TEST_DIR + "/sbin")
    world.run(["cp", sb.DAEMON, binary], check=True)
    config = {"backend": BACKEND, "stop_delay": 0}
    d1 = world.start_daemon(config, binary=binary)
    h = world.hold_su("user1")
    before = {u["name"]: u["manager_pid"] for u in world.users()}
    session = [s["id"] for s in world.sessions()]
    world.write_file(binary + ".new", "#!/bin/sh\necho 'broken upgrade' >&2\nexit 1\n",
                     mode=0o755)
    world.run(["mv", "-f", binary + ".new", binary], check=True)
    r = d1.ctl("reexec")
    assert r.returncode != 0  # the connection ended without an answer
    assert d1.wait(10) == 1
    d1.wait_log(r"broken upgrade")
    # No daemon: the manager still runs, its records are there.
    assert world.run(["kill", "-0", str(before["user1"])]).returncode == 0
    d2 = world.start_daemon(config)
    d2.wait_log(r"session %d of user1 \(pid %d\) taken over" % (session[0], h.pid))
    assert {u["name"]: u["manager_pid"] for u in world.users()} == before
    assert [s["id"] for s in world.sessions()] == session
    assert h.end() == 0
    world.wait_for(lambda: world.users() == [], what="user1 gone after the logout")
    assert world.run(["kill", "-0", str(before["user1"])]).returncode != 0
    assert d2.stop() == 0


SLOW_MANAGER_PAM = ("account  required pam_permit.so\n"
                    "session  optional pam_exec.so quiet /bin/sleep 0.1\n")


def test_reexec_racing_cold_logins(world):
    """40 times: a cold login (its manager's child does 100 ms of PAM session
    work between fork and exec, holding whatever it inherited) and a reexec
    as soon as the manager is forked. The daemon keeps its pid, every login
    is served, nothing is left after the logouts."""
    gated_world(world)
    world.write_file("/etc/pam.d/dinit-userservd", SLOW_MANAGER_PAM)
    d = world.start_daemon({"backend": BACKEND, "stop_delay": 0})
    uid = world.user("user1")["uid"]
    host_pid = d.host_pid
    for i in range(40):
        m = d.mark()
        login = world.popen(["su", "-l", "user1", "-c", "echo XDG=$XDG_RUNTIME_DIR"],
                            timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
        d.wait_log(r"started the manager of user1", start=m)
        r = d.ctl("reexec")
        assert r.returncode == 0, (i, r.stderr, d.log())
        d.wait_log(r"re-executed, listening", start=m)
        out, _ = login.communicate(timeout=30)
        assert login.returncode == 0, (i, out)
        assert out.decode().split() == ["XDG=/run/user/%d" % uid], (i, out)
        d.wait_log(r"manager of user1 is ready", start=m)
        assert d.running() and d.host_pid == host_pid
        world.wait_for(lambda: world.users() == [], timeout=10, what="user1 gone (%d)" % i)
    assert world.sessions() == []
    assert not world.exists("/run/user/%d" % uid)
    left = world.run(["pgrep", "-u", str(uid)]).stdout.split()
    assert left == [], left
    assert d.stop() == 0


# ---- soak: churn of logins, killed managers, stopped users and reexecs ------------

SOAK_SECONDS = float(os.environ.get("DUS_SOAK_SECONDS", "40"))
SOAK_USERS = ["soak%d" % i for i in range(1, 7)]


def daemon_rss_kb(d):
    with open("/proc/%d/status" % d.host_pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


@pytest.mark.soak
def test_soak_churn(world):
    """Six users log in and out in parallel (one-shot and short-held logins,
    two of them twice at a time, so managers start cold and are used warm; each manager's start spends 50 ms in
    its PAM session) for DUS_SOAK_SECONDS (40 s by default:
    the whole test stays within about a minute, twice that for the two runs
    of tests/run --ci), while managers are killed, users stopped and the
    daemon re-executed. Afterwards: every login returned 0, the daemon kept
    its pid, its fd count and RSS are back near their start, and no process
    or runtime dir of a test user is left."""
    import random
    import threading

    gated_world(world)
    # Each manager's child spends a little time in its PAM session between
    # fork and exec, as a real stack (pam_limits, pam_keyinit...) does.
    world.write_file("/etc/pam.d/dinit-userservd", SLOW_MANAGER_PAM.replace("0.1", "0.05"))
    for name in SOAK_USERS:
        world.add_user(name)
    uids = {name: world.user(name)["uid"] for name in SOAK_USERS}
    d = world.start_daemon({"backend": BACKEND, "stop_delay": 0, "login_timeout": 10,
                            "restart_limit": 1000})
    host_pid = d.host_pid
    # A first round, so that what is allocated once (hash tables, the
    # timer heap) is in the baseline.
    for name in SOAK_USERS:
        assert world.su(name, "true").returncode == 0
    world.wait_for(lambda: world.users() == [], timeout=20, what="baseline: users gone")
    fds0 = len(daemon_fds(d))
    rss0 = daemon_rss_kb(d)

    deadline = time.monotonic() + SOAK_SECONDS
    lock = threading.Lock()
    logins, failures, actions = [], [], {"kill": 0, "stop-user": 0, "reexec": 0}

    def worker(name, seed):
        rnd = random.Random(seed)
        while time.monotonic() < deadline:
            cmd = "echo XDG=$XDG_RUNTIME_DIR"
            if rnd.random() < 0.4:
                cmd += "; sleep 0.%d" % rnd.randint(1, 5)
            try:
                r = world.su(name, cmd, timeout=40)
                rc, err = r.returncode, r.stderr
                # Served by the daemon: the runtime dir it manages.
                if rc == 0 and r.stdout.split() != ["XDG=/run/user/%d" % uids[name]]:
                    rc, err = "no rundir", r.stdout + r.stderr
            except Exception as e:  # reported below, not lost in a thread
                rc, err = None, "%s: %s" % (type(e).__name__, e)
            with lock:
                logins.append(rc)
                if rc != 0:
                    failures.append((name, rc, err))

    def chaos(seed):
        rnd = random.Random(seed)
        while time.monotonic() < deadline:
            time.sleep(rnd.uniform(0.2, 0.8))  # pacing of the churn, not a wait
            what = rnd.choice(["kill", "kill", "stop-user", "reexec"])
            try:
                if what == "reexec":
                    r = d.ctl("reexec")
                    ok = r.returncode == 0 and d.running() and d.host_pid == host_pid
                elif what == "stop-user":
                    r = d.ctl("stop-user", rnd.choice(SOAK_USERS))
                    ok = r.returncode in (0, 1)  # 1: that user is not known right now
                else:
                    pids = [u["manager_pid"] for u in world.users() if u["manager_pid"]]
                    if not pids:
                        continue
                    world.run(["kill", "-KILL", str(rnd.choice(pids))])
                    ok = True
            except Exception as e:
                ok, r = False, e
            with lock:
                actions[what] += 1
                if not ok:
                    failures.append(("chaos " + what, getattr(r, "returncode", None),
                                     getattr(r, "stderr", str(r))))

    # Two logins at a time for two of the users: warm logins beside the
    # cold ones (stop_delay 0: a user's last logout stops its manager).
    threads = [threading.Thread(target=worker, args=(n, i), daemon=True)
               for i, n in enumerate(SOAK_USERS + SOAK_USERS[:2])]
    threads.append(threading.Thread(target=chaos, args=(99,), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(SOAK_SECONDS + 120)
        assert not t.is_alive(), "a soak thread did not end"
    print("soak: %d logins, actions %r, failures %d" % (len(logins), actions, len(failures)))
    assert failures == [], failures[:10]
    assert d.running() and d.host_pid == host_pid
    assert actions["reexec"] >= 3 and len(logins) >= 6 * 5, (actions, len(logins))

    # After the last logout: every user goes (a failed one stays listed
    # without a manager; stop-user forgets it), nothing of theirs is left.
    world.wait_for(lambda: world.sessions() == [], timeout=20, what="no session left")
    world.wait_for(lambda: all(u["manager_pid"] in (None, 0) for u in world.users()),
                   timeout=20, what="no manager left")
    for u in world.users():
        d.ctl("stop-user", u["name"])
    world.wait_for(lambda: world.users() == [], timeout=20, what="no user left")
    for name, uid in uids.items():
        left = world.run(["pgrep", "-u", str(uid)]).stdout.split()
        assert left == [], (name, left)
        assert not world.exists("/run/user/%d" % uid), name
    try:
        world.wait_for(lambda: len(daemon_fds(d)) <= fds0, timeout=5, what="daemon fds back")
    except sb.CommandTimeout:
        pass
    fds1, rss1 = len(daemon_fds(d)), daemon_rss_kb(d)
    print("daemon fds %d -> %d, VmRSS %d -> %d kB" % (fds0, fds1, rss0, rss1))
    assert fds1 <= fds0, (fds0, fds1, daemon_fds(d))
    if not sb.sanitized_daemon():  # ASan's quarantine holds freed memory
        assert rss1 <= rss0 + 1024, "daemon VmRSS grew from %d to %d kB" % (rss0, rss1)
    assert d.stop() == 0
