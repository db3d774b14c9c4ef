# SPDX-License-Identifier: BSD-2-Clause
"""Issue 19, items 2 and 3: a login never hangs, whatever happens while it
waits; and a login that arrives while the user's previous manager is still
stopping.

The managers are custom backends (docs/backends.md): small shell programs
whose readiness, or whose stop, the test holds back at a FIFO gate.

* login_timeout = 3 with a manager whose readiness never comes: su -l goes
  on after 3-4.5 s with status 0 and the module's log line (syslog, caught
  on /dev/log inside the sandbox); with the module `required` pamtester's
  open fails in 3-4.5 s; once the readiness comes the state is `ready` and
  the next login is immediate.
* a login waiting when the daemon is SIGKILLed goes on within 1 s; the
  restarted daemon takes its session over, and after its logout nothing of
  the user is left.
* a login while the previous manager stops (slowly; or ignoring SIGTERM
  until stop_timeout): it waits, gets a new manager once the old one is gone
  (never two at once), keeps a usable runtime dir, which is removed only
  after that login ends.
"""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

BACKEND = sb.TEST_DIR + "/wait-backend"
READY_GATE = sb.TEST_DIR + "/ready-gate"
STOP_GATE = sb.TEST_DIR + "/stop-gate"
SYSLOG = sb.TEST_DIR + "/syslog-listen.py"

# Reports ready only once a line comes through READY_GATE (when that FIFO
# exists); runs until SIGTERM.
GATED_READY = """#!/bin/sh
if [ -p %(gate)s ]; then
    read -r _ < %(gate)s
fi
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
""" % {"gate": READY_GATE}

# Ready at once; a SIGTERM marks ~/.manager-stopping, then waits for a line
# through STOP_GATE (when that FIFO exists) before exiting.
SLOW_STOP = """#!/bin/sh
on_term() {
    : > "$HOME/.manager-stopping"
    if [ -p %(gate)s ]; then
        read -r _ < %(gate)s
    fi
    exit 0
}
trap on_term TERM
echo ready > "$DINIT_USERSERVD_READY"
while :; do
    sleep 100000 &
    wait $!
done
""" % {"gate": STOP_GATE}

# Ready at once; SIGTERM ignored (the daemon kills it at stop_timeout).
IGNORES_TERM = """#!/bin/sh
trap '' TERM
echo ready > "$DINIT_USERSERVD_READY"
while :; do
    sleep 100000
done
"""

# Inside the sandbox: receive syslog datagrams on /dev/log, one per line.
SYSLOG_LISTEN = r"""
import os, socket, sys
try:
    os.unlink("/dev/log")
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
print("listening", flush=True)
while True:
    data = s.recv(65536)
    print(data.decode(errors="replace").replace("\n", " "), flush=True)
"""


def install_backend(world, script):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND, script, mode=0o755)
    return BACKEND


def make_fifo(world, path):
    world.run(["mkfifo", "-m", "0666", path], check=True)


def open_gate(world, path):
    """One line through a gate FIFO (blocks until its reader opens it)."""
    world.run(["sh", "-c", 'echo go > "$1"', "sh", path], timeout=20, check=True)


def status(world, user="user1"):
    return world.ctl_json("status", user)


def known(world, user="user1"):
    return any(u["name"] == user for u in world.users())


def wait_state(world, state, timeout=10, user="user1"):
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


def alive(world, pid):
    """Whether pid runs inside (and is not a zombie)."""
    try:
        with open(world.host_path("/proc/%d/stat" % pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def user_procs(world, uid):
    r = world.run(["ps", "-e", "-ww", "-o", "pid=,uid=,args="], check=True)
    out = []
    for line in r.stdout.splitlines():
        f = line.split(None, 2)
        if len(f) == 3 and int(f[1]) == uid:
            out.append((int(f[0]), f[2]))
    return out


def manager_procs(world, uid):
    """Processes of uid running the backend script (the managers)."""
    return [p for p in user_procs(world, uid) if BACKEND in p[1]]


def stat(world, path):
    r = world.run(["stat", "-c", "%F|%U|%a", "--", path])
    return r.stdout.strip() if r.returncode == 0 else None


def assert_nothing_left(world, user="user1", timeout=10):
    uid = world.user(user)["uid"]
    world.wait_for(lambda: not known(world, user), timeout=timeout,
                   what="%s no longer known" % user)
    world.wait_for(lambda: user_procs(world, uid) == [], timeout=timeout,
                   what="no process of %s left" % user)
    assert not world.exists("/run/user/%d" % uid)
    assert world.sessions() == []


class BackgroundLogin:
    """hold_su() in a thread: the login may wait inside pam_open_session
    while the test acts; .done_at is when its shell started."""

    def __init__(self, world, user, timeout=40):
        self.held = None
        self.error = None
        self.done_at = None
        self.thread = threading.Thread(target=self._run, args=(world, user, timeout),
                                       daemon=True)
        self.thread.start()

    def _run(self, world, user, timeout):
        try:
            self.held = world.hold_su(user, timeout=timeout)
        except Exception as e:  # raised by wait() in the test's thread
            self.error = e
        self.done_at = time.monotonic()

    def done(self):
        return self.done_at is not None

    def wait(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the login is still waiting after %s s" % timeout
        if self.error:
            raise self.error
        return self.held


# ---- login_timeout ---------------------------------------------------------------

@pytest.fixture
def lworld(request):
    """world (users user1 and user2, logins wired to the module), in a
    sandbox with an overlay over /dev, so that a syslog socket can be made at
    /dev/log there (the host's /dev stays untouched)."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root", pytrace=False)
    workdir = tempfile.mkdtemp(prefix="dus-it-")
    box = sb.Sandbox(workdir, overlays=["/dev"])
    box.add_user("user1")
    box.add_user("user2")
    box.wire_logins()
    yield box
    box.close()
    for d in box.daemons:
        print("---- daemon log (%s, exit %s) ----" % (d.config_path, d.proc.returncode))
        print(d.log())


def start_syslog(world):
    world.write_file(SYSLOG, SYSLOG_LISTEN)
    p = world.popen([sb.PYTHON, SYSLOG], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT)
    reader = sb.LineReader(p.stdout)
    assert reader.readline(10) == "listening"
    world.held.append(_Killer(p))
    return reader


def test_login_timeout_su_goes_on_then_readiness_comes(lworld):
    w = lworld
    install_backend(w, GATED_READY)
    make_fifo(w, READY_GATE)
    syslog = start_syslog(w)
    # stop_delay: the manager keeps starting after the first login ended.
    d = w.start_daemon({"backend": BACKEND, "login_timeout": 3, "stop_delay": 60})
    r = w.su("user1", "echo LOGGED-IN", timeout=30)
    assert r.returncode == 0, r
    assert r.stdout.split() == ["LOGGED-IN"]
    assert 3.0 <= r.elapsed <= 4.5, "su -l took %.2f s with login_timeout = 3" % r.elapsed
    line = syslog.read_until(lambda l: "timed out after 3 s waiting for user1's service "
                             "manager" in l, 5, "the module's timeout line")[-1]
    assert "pam_dinit_userservd" in line or "su" in line, line
    st = status(w)
    assert st["state"] == "starting" and st["sessions"] == [], st
    # The readiness comes late: ready, and the next login does not wait.
    open_gate(w, READY_GATE)
    wait_state(w, "ready", timeout=5)
    r = w.su("user1", "echo AGAIN", timeout=30)
    assert r.returncode == 0 and r.stdout.split() == ["AGAIN"], r
    assert r.elapsed < 1.0, "the login after readiness took %.2f s" % r.elapsed
    assert d.stop() == 0


def test_login_timeout_required_module_fails(world):
    install_backend(world, GATED_READY)
    make_fifo(world, READY_GATE)
    module = "session  required   %s socket=%s" % (sb.PAM_MODULE, sb.DEFAULT_SOCKET)
    world.write_pam_service("dus-required", world.pam_stack(module=False,
                                                            extra_session=[module]))
    d = world.start_daemon({"backend": BACKEND, "login_timeout": 3, "stop_delay": 60})
    r = world.pamtester("dus-required", "user1", "open_session", timeout=30)
    assert r.returncode != 0, r
    assert 3.0 <= r.elapsed <= 4.5, "pamtester took %.2f s with login_timeout = 3" % r.elapsed
    assert status(world)["state"] == "starting"
    open_gate(world, READY_GATE)
    wait_state(world, "ready", timeout=5)
    r = world.pamtester("dus-required", "user1", "open_session", "close_session", timeout=30)
    assert r.returncode == 0, r
    assert r.elapsed < 1.0, "pamtester took %.2f s once ready" % r.elapsed
    assert d.stop() == 0


# ---- the daemon dies while a login waits ------------------------------------------

def test_login_waiting_when_daemon_is_killed(world):
    install_backend(world, GATED_READY)
    make_fifo(world, READY_GATE)
    config = {"backend": BACKEND, "login_timeout": 30, "stop_delay": 0}
    d1 = world.start_daemon(config)
    login = BackgroundLogin(world, "user1")
    s = world.wait_for(lambda: world.sessions(), timeout=10, what="the waiting session")[0]
    assert status(world)["state"] == "starting"
    assert not login.done()
    mgr = status(world)["manager_pid"]
    t0 = time.monotonic()
    d1.signal(signal.SIGKILL)
    h = login.wait(5)
    elapsed = login.done_at - t0
    assert elapsed < 1.0, "the login went on %.2f s after the daemon was killed" % elapsed
    assert d1.wait() == -signal.SIGKILL
    uid = world.user("user1")["uid"]
    assert h.env.get("XDG_RUNTIME_DIR") == "/run/user/%d" % uid

    d2 = world.start_daemon(config)
    d2.wait_log(r"session %d of user1 \(pid %d\) taken over" % (s["id"], s["pid"]))
    d2.wait_log(r"adopted the manager of user1: pid %d\b" % mgr)
    assert [(x["id"], x["pid"]) for x in world.sessions()] == [(s["id"], s["pid"])]
    assert status(world)["manager_pid"] == mgr
    m = d2.mark()
    assert h.end() == 0
    d2.wait_log(r"session %d closed" % s["id"], start=m)
    assert_nothing_left(world)
    assert d2.stop() == 0


# ---- a login while the previous manager stops ---------------------------------------

@pytest.mark.parametrize("how", ["slow-stop", "ignores-sigterm"])
def test_login_while_stopping(world, how):
    stop_timeout = 2 if how == "ignores-sigterm" else 30
    install_backend(world, SLOW_STOP if how == "slow-stop" else IGNORES_TERM)
    if how == "slow-stop":
        make_fifo(world, STOP_GATE)
    uid = world.user("user1")["uid"]
    rundir = "/run/user/%d" % uid
    d = world.start_daemon({"backend": BACKEND, "stop_delay": 0, "stop_timeout": stop_timeout,
                            "login_timeout": 20})
    h1 = world.hold_su("user1")
    first = status(world)["manager_pid"]
    assert first and h1.env.get("XDG_RUNTIME_DIR") == rundir

    m = d.mark()
    t_logout = time.monotonic()
    assert h1.end() == 0
    d.wait_log(r"stopping the manager of user1 \(pid %d\)" % first, start=m)
    if how == "slow-stop":
        world.wait_for(lambda: world.exists("/home/user1/.manager-stopping"),
                       what="the manager in its SIGTERM handler")
    assert status(world)["state"] == "stopping"

    # A new login now: it waits for the old manager to be gone.
    login = BackgroundLogin(world, "user1")
    s = world.wait_for(lambda: world.sessions(), timeout=10, what="the new session")[0]
    assert s["pid"] != h1.pid
    assert status(world)["state"] == "stopping"
    assert not login.done(), "the login went on while the old manager was stopping"
    assert [p for p, _ in manager_procs(world, uid)] == [first]
    assert stat(world, rundir) == "directory|user1|700"
    if how == "slow-stop":
        open_gate(world, STOP_GATE)
    h2 = login.wait(stop_timeout + 10)
    waited = login.done_at - t_logout
    if how == "ignores-sigterm":
        # SIGTERM changed nothing: the new manager came after the SIGKILL.
        assert stop_timeout - 0.5 <= waited <= stop_timeout + 3, waited

    # Never two managers: the old one stopped before the new one started.
    log = d.log_lines()[m:]
    stopped = [i for i, l in enumerate(log) if "the manager of user1 stopped" in l]
    started = [i for i, l in enumerate(log) if "started the manager of user1" in l]
    assert stopped and started and stopped[0] < started[0], "\n".join(log)
    second = status(world)["manager_pid"]
    assert second and second != first and not alive(world, first)
    assert status(world)["state"] == "ready"
    assert [p for p, _ in manager_procs(world, uid)] == [second]

    # The runtime dir stayed, and is usable by the new login's user.
    assert h2.env.get("XDG_RUNTIME_DIR") == rundir
    assert stat(world, rundir) == "directory|user1|700"
    world.run(world.as_user("user1", ["sh", "-c", 'echo x > "$1/probe" && cat "$1/probe"',
                                      "sh", rundir]), check=True)
    assert not [l for l in d.log_lines()[m:] if "removed " + rundir in l]

    # Removed only after that login ended (and its manager stopped).
    if how == "slow-stop":
        world.run(["rm", "-f", STOP_GATE], check=True)
    m2 = d.mark()
    assert h2.end() == 0
    d.wait_log(r"the manager of user1 stopped", start=m2, timeout=stop_timeout + 5)
    assert_nothing_left(world)
    d.wait_log(r"removed %s" % re.escape(rundir), start=m2)
    assert d.stop() == 0


class _Killer:
    """Teardown: SIGKILL a background process group (Sandbox.close calls close())."""

    def __init__(self, proc):
        self.proc = proc

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
