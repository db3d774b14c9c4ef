# SPDX-License-Identifier: BSD-2-Clause
"""Backends for the tests of issue 4 (per-user managers): fixtures and helpers.

Import the fixtures into a test module (pytest finds them there):

    from backend_fixtures import backend, bworld  # noqa: F401

    backend   one Backend per built-in backend that spawns a manager: runit,
              s6, dinit (the test runs once for each). dinit is the real
              `dinit` when one is on the test process's PATH, else the
              stand-in in tests/dinit-standin (see dinit_dir()).
    bworld    the harness's `world` (users user1, user2, logins wired to the
              module), with user1 also in the supplementary groups audio and
              video (so that the manager's groups are worth comparing).

A Backend writes a user's services in its own format (add_service,
add_failing_service) and gives the daemon config that selects it (config()).
A service body is /bin/sh text; it may call `dus_ready` to say it is ready, in
the backend's own readiness convention (runit: a ./check script, s6:
notification-fd, dinit: ready-notification = pipefd:3), when the service was
added with ready=True; its last command should exec the long-running program.

Helpers: procs(world) lists every process of the sandbox (backends/procs.py),
user_procs(world, uid) those running with that uid, wait_no_user_procs(),
wait_state(), daemon_resources() (fd count and VmRSS of the daemon, read from
the host's /proc).
"""
import json
import os
import shlex
import shutil
import subprocess

import pytest

import sandbox as sb

STANDIN_DIR = os.path.join(sb.REPO, "tests", "dinit-standin")
PROCS = os.path.join(sb.HERE, "backends", "procs.py")
MANAGER_PATH = "/usr/local/bin:/usr/bin:/bin"  # the daemon's default PATH for managers


def dinit_dir():
    """(directory, label) of the dinit the dinit backend runs: the real dinit's
    directory when a `dinit` is on this process's PATH, else the stand-in's."""
    found = shutil.which("dinit")
    if not found:
        return STANDIN_DIR, "stand-in"
    d = os.path.dirname(os.path.abspath(found))
    if os.path.samefile(d, STANDIN_DIR):
        return STANDIN_DIR, "stand-in"
    for private in sb.PRIVATE_PATHS:
        if d == private or d.startswith(private + "/"):
            pytest.fail("the dinit on PATH (%s) is under %s, which the sandbox hides: "
                        "put it elsewhere (e.g. /var/tmp)" % (found, private), pytrace=False)
    try:
        out = subprocess.run([found, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        label = out.splitlines()[0].strip() if out else "real dinit"
    except (OSError, subprocess.TimeoutExpired):
        label = "real dinit"
    return d, "%s (%s)" % (label, found)


class Backend:
    name = None
    #: programs of which each user's manager has exactly one process
    supervisors = ()

    def config(self, **extra):
        """Daemon config selecting this backend (harness defaults otherwise)."""
        cfg = {"backend": self.name}
        cfg.update(extra)
        return cfg

    def add_service(self, world, user, name, body, ready=False):
        raise NotImplementedError

    def add_failing_service(self, world, user, name, script=None, ready=False):
        """An autostart service that cannot start: its command (script: /bin/sh
        text, by default a message and exit 1) fails. ready: it declares
        readiness in the backend's convention (and never gets there);
        otherwise runit and s6 cannot tell a start from being ready (dinit:
        a scripted service, whose start is its command's success)."""
        raise NotImplementedError

    def __repr__(self):
        return self.name


# The command of a failing service; it does not name the service, so that a
# log line naming it comes from the product.
FAILING = "echo 'failing on purpose' >&2\nexit 1"


def _home(world, user):
    return world.user(user)["home"]


class ScandirBackend(Backend):
    """runit and s6: a scan directory of service directories with a ./run."""

    def service_dir(self, world, user, name):
        raise NotImplementedError

    def _ready_parts(self, svc, ready):
        """(prologue defining dus_ready, {extra file: (content, mode)})."""
        raise NotImplementedError

    def add_service(self, world, user, name, body, ready=False):
        svc = self.service_dir(world, user, name)
        prologue, extra = self._ready_parts(svc, ready)
        for fname, (content, mode) in extra.items():
            world.write_file("%s/%s" % (svc, fname), content, mode=mode, owner=user)
        world.write_file(svc + "/run", "#!/bin/sh\n" + prologue + body + "\n", mode=0o755,
                         owner=user)
        return svc

    def add_failing_service(self, world, user, name, script=None, ready=False):
        return self.add_service(world, user, name, script or FAILING, ready=ready)


class Runit(ScandirBackend):
    name = "runit"
    supervisors = ("scandir-exec", "runsvdir")

    def service_dir(self, world, user, name):
        return "%s/.config/service/%s" % (_home(world, user), name)

    def _ready_parts(self, svc, ready):
        if not ready:
            return "dus_ready() { :; }\n", {}
        flag = shlex.quote(svc + "/dus-ready")
        # runit's readiness convention: ./check exits 0 once the service is ready.
        return ("rm -f %s\ndus_ready() { : > %s; }\n" % (flag, flag),
                {"check": ("#!/bin/sh\nexec test -e %s\n" % flag, 0o755)})


class S6(ScandirBackend):
    name = "s6"
    supervisors = ("s6-svscan",)

    def service_dir(self, world, user, name):
        return "%s/.config/s6/service/%s" % (_home(world, user), name)

    def _ready_parts(self, svc, ready):
        if not ready:
            return "dus_ready() { :; }\n", {}
        # s6 readiness notification: a line on the notification fd.
        return ("dus_ready() { echo >&3; exec 3>&-; }\n",
                {"notification-fd": ("3\n", 0o644)})


class Dinit(Backend):
    name = "dinit"
    supervisors = ("dinit",)

    def __init__(self):
        self.dir, self.label = dinit_dir()

    def config(self, **extra):
        # The supervisor resolves the manager's argv[0] in the manager's PATH.
        cfg = {"backend": "dinit", "manager_env": "PATH=%s:%s" % (self.dir, MANAGER_PATH)}
        cfg.update(extra)
        return cfg

    def _write(self, world, user, name, description, script):
        home = _home(world, user)
        path = "%s/.config/dus-services/%s.sh" % (home, name)
        world.write_file(path, "#!/bin/sh\n" + script + "\n", mode=0o755, owner=user)
        world.write_file("%s/.config/dinit.d/%s" % (home, name),
                         description.replace("@SCRIPT@", path), owner=user)
        world.makedirs("%s/.config/dinit.d/boot.d" % home, owner=user)
        world.run(world.as_user(user, ["ln", "-sfn", "../" + name,
                                       "%s/.config/dinit.d/boot.d/%s" % (home, name)]),
                  check=True)

    def add_service(self, world, user, name, body, ready=False):
        desc = "type = process\ncommand = /bin/sh @SCRIPT@\n"
        if ready:
            desc += "ready-notification = pipefd:3\n"
            prologue = "dus_ready() { echo >&3; exec 3>&-; }\n"
        else:
            prologue = "dus_ready() { :; }\n"
        self._write(world, user, name, desc, prologue + body)

    def add_failing_service(self, world, user, name, script=None, ready=False):
        if ready:  # a process that exits before it notifies readiness
            self.add_service(world, user, name, script or FAILING, ready=True)
        else:
            self._write(world, user, name, "type = scripted\ncommand = /bin/sh @SCRIPT@\n",
                        script or FAILING)

    def __repr__(self):
        return "dinit[%s]" % self.label


BACKENDS = {"runit": Runit, "s6": S6, "dinit": Dinit}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    b = BACKENDS[request.param]()
    print("backend: %r" % b)
    return b


@pytest.fixture
def bworld(world):
    world.run(["usermod", "-aG", "audio,video", "user1"], check=True)
    return world


# ---- processes -------------------------------------------------------------

def procs(world):
    """Every process in the sandbox (dicts from backends/procs.py)."""
    r = world.run([sb.PYTHON, PROCS], check=True)
    return json.loads(r.stdout)


def prog(p):
    """Program name of a process: basename of argv[0], or of the script when
    argv[0] is an interpreter (the dinit stand-in is a python3 script)."""
    argv = p.get("argv") or [""]
    name = os.path.basename(argv[0])
    if name.startswith("python") and len(argv) > 1:
        return os.path.basename(argv[1])
    return name


def user_procs(world, uid, ps=None):
    """Processes with uid as any of their uids (real, effective, saved, fs)."""
    return [p for p in (procs(world) if ps is None else ps) if uid in p.get("uids", ())]


def below(ps, root):
    """pids of root and every process below it."""
    tree = {root}
    changed = True
    while changed:
        changed = False
        for p in ps:
            if p.get("ppid") in tree and p["pid"] not in tree:
                tree.add(p["pid"])
                changed = True
    return tree


def describe(ps):
    return "\n".join("%6d %6d %s %s" % (p["pid"], p.get("ppid", -1), p.get("state", "?"),
                                        " ".join(p.get("argv", []))) for p in ps)


def wait_no_user_procs(world, uid, timeout, exclude=()):
    """Wait (deadline) until no process runs with uid, except pids in exclude."""
    last = []

    def probe():
        last[:] = [p for p in user_procs(world, uid) if p["pid"] not in exclude]
        return not last

    try:
        world.wait_for(probe, timeout=timeout, interval=0.05,
                       what="no process of uid %d" % uid)
    except sb.CommandTimeout:
        raise AssertionError("processes of uid %d still there after %s s:\n%s"
                             % (uid, timeout, describe(last)))


def status(world, user):
    return world.ctl_json("status", user)


def wait_state(world, user, states, timeout=5):
    """Wait until the user's state is one of states; returns the status."""
    if isinstance(states, str):
        states = (states,)
    last = {}

    def probe():
        last.clear()
        last.update(status(world, user))
        return last.get("state") in states and dict(last)

    try:
        return world.wait_for(probe, timeout=timeout, what="%s in state %s" % (user, states))
    except sb.CommandTimeout:
        raise AssertionError("%s not in state %s within %s s: %r" % (user, states, timeout, last))


def daemon_fds(daemon):
    """{fd: what it points to} of the daemon, from the host's /proc."""
    out = {}
    base = "/proc/%d/fd" % daemon.host_pid
    for fd in os.listdir(base):
        try:
            out[int(fd)] = os.readlink(os.path.join(base, fd))
        except OSError:
            pass
    return out


def daemon_resources(daemon):
    """(open fd count, VmRSS in kB) of the daemon, from the host's /proc."""
    nfds = len(os.listdir("/proc/%d/fd" % daemon.host_pid))
    rss = None
    with open("/proc/%d/status" % daemon.host_pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return nfds, rss
