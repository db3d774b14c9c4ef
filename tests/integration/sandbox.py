# SPDX-License-Identifier: BSD-2-Clause
"""Throwaway namespace sandboxes for real-login integration tests.

A Sandbox is a private world on this host:

    timeout -k 5 LIFETIME unshare --mount --pid --net --fork --kill-child --mount-proc \
        python3 sandbox_init.py [EXTRA_OVERLAY...]

sandbox_init.py (PID 1 inside, reaps orphans) mounts overlays over /etc and
/var/lib, tmpfs on /run /home /tmp /var/log /dev/shm, a new devpts, and
brings lo up; see its docstring. Everything else (/usr, /work, the build
dir) is the host's, read-write: do not write outside the private paths
unless you asked for an overlay over that directory.

Commands run inside with nsenter into the init's mount, pid and net
namespaces, always under `timeout -k 5 N` inside and a Python-side deadline
outside. Teardown SIGKILLs the unshare process; --kill-child then kills the
init and with it every process in the sandbox.

See tests/README.md for the fixtures and helpers built on this.
"""
import json
import os
import re
import select
import shlex
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.path.abspath(os.environ.get("DUS_BUILD_DIR") or os.path.join(REPO, "build"))

# Each artefact can come from elsewhere (tests/run --ci runs the suite with a
# sanitizer build of the daemon and CLI but the plain module, which su loads).
DAEMON = os.environ.get("DUS_DAEMON") or os.path.join(BUILD_DIR, "src/daemon/dinit-userservd")
CTL = os.environ.get("DUS_CTL") or os.path.join(BUILD_DIR, "src/ctl/dinit-userservctl")
PAM_MODULE = (os.environ.get("DUS_PAM_MODULE")
              or os.path.join(BUILD_DIR, "src/pam/pam_dinit_userservd.so"))
# The backends' helpers (dinit-launch, scandir-exec, ...), passed to the
# daemon as DINIT_USERSERVD_LIBEXECDIR so that it runs the built ones.
LIBEXEC_DIR = (os.environ.get("DUS_LIBEXEC_DIR")
               or os.path.join(BUILD_DIR, "src/libexec"))

PYTHON = "/usr/bin/python3"
PTYRUN = os.path.join(HERE, "ptyrun.py")
PAMLOGIN = os.path.join(HERE, "pamlogin.py")
DUSPROTO = os.path.join(HERE, "dusproto.py")
RECORD_PAM_ITEMS = os.path.join(HERE, "record-pam-items")
PAM_HOLD = os.path.join(HERE, "pam-hold")

# Paths that are private in the sandbox (a fresh tmpfs or an overlay): the
# build dir must not be below one of these.
PRIVATE_PATHS = ("/run", "/home", "/tmp", "/var/log", "/dev/shm", "/etc", "/var/lib")

# Where the harness keeps its files inside a sandbox (private tmpfs).
TEST_DIR = "/run/dus-test"
PAM_ITEMS_LOG = TEST_DIR + "/pam-items.log"
DEFAULT_SOCKET = "/run/dinit-userservd/control.sock"

# Marker a held login prints once its shell runs.
STARTED = "DUS-STARTED"

# Login services the harness wires to the module: su -l uses su-l, runuser -l
# uses runuser-l (Debian); pamtester and pamlogin.py use dus-test.
LOGIN_SERVICES = ("su", "su-l", "runuser", "runuser-l", "dus-test")

CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}
def sanitized_daemon():
    """Whether the daemon under test is an AddressSanitizer build."""
    with open(DAEMON, "rb") as f:
        return b"AddressSanitizer" in f.read()


# Sanitizer settings reach the daemon and the CLI inside.
for _k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
    if _k in os.environ:
        CLEAN_ENV[_k] = os.environ[_k]


class SandboxError(Exception):
    pass


class CommandTimeout(SandboxError):
    pass


def _children(pid):
    """Direct children of a host pid (empty when it has none or is gone)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _ns_pid(host_pid):
    """The innermost-namespace pid of a host pid."""
    with open("/proc/%d/status" % host_pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise SandboxError("no NSpid for %d" % host_pid)


def _cgroup2_base():
    """Our own cgroup in the host's cgroup2 hierarchy (a directory), or None."""
    mnt = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split(" ")[0] == "cgroup2":
                point = pre.split(" ")[4]
                if mnt is None or point == "/sys/fs/cgroup":
                    mnt = point
    if mnt is None:
        return None
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                own = line[3:].strip()
                path = mnt + ("" if own == "/" else own)
                return path if os.access(path, os.W_OK) else None
    return None


def _remove_cgroup(path, timeout=10):
    """Kill everything in a cgroup2 subtree and remove it, children first."""
    if not os.path.isdir(path):
        return
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    for root, dirs, _ in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        while True:
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError:
                # Killed processes still exiting: short retries with a deadline.
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)


class LineReader:
    """Reads lines from a pipe with a deadline on every read."""

    def __init__(self, fileobj):
        self.fd = fileobj.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.eof = False
        self.lines = []  # every line read so far

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        r, _, _ = select.select([self.fd], [], [], left)
        if not r:
            raise TimeoutError
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.eof = True
        self.buf += data

    def readline(self, timeout):
        """Next line without its end (\\r stripped: ptys write \\r\\n), or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    break
                return None
            self._fill(deadline)
        else:
            line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode(errors="replace").rstrip("\r")
        self.lines.append(text)
        return text

    def read_until(self, predicate, timeout, what="line"):
        """Read lines until predicate(line); returns the lines before it."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            try:
                line = self.readline(max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise CommandTimeout("no %s within %.1f s; got %r" % (what, timeout, before))
            if line is None:
                raise SandboxError("end of output before %s; got %r" % (what, before))
            if predicate(line):
                return before
            before.append(line)

    def read_rest(self, timeout):
        deadline = time.monotonic() + timeout
        rest = []
        while True:
            try:
                line = self.readline(max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise CommandTimeout("output did not end within %.1f s; got %r" % (timeout, rest))
            if line is None:
                return rest
            rest.append(line)


class Sandbox:
    """One throwaway world. Use as a context manager or call close()."""

    def __init__(self, workdir, overlays=(), lifetime=900):
        self.workdir = workdir  # host dir for the harness's logs
        os.makedirs(workdir, exist_ok=True)
        self.overlays = list(overlays)
        self.lifetime = lifetime
        self.daemons = []
        self.held = []
        self.proc = None
        self.unshare_pid = None
        self.init_pid = None
        self._start()

    # ---- lifecycle -----------------------------------------------------

    def _start(self):
        # A cgroup2 subtree of our own: every process of the sandbox (and any
        # cgroup the daemon makes for users) lives below it, so that sandboxes
        # running at the same time never share .../dinit-userservd/user-UID,
        # and teardown leaves nothing behind on the host.
        self.cgroup = None
        base = _cgroup2_base()
        if base:
            self.cgroup = os.path.join(base, "dus-sandbox-%d-%d" % (os.getpid(), id(self)))
            os.mkdir(self.cgroup)
        self.init_log = os.path.join(self.workdir, "sandbox-init.log")
        with open(self.init_log, "wb") as log:
            self.proc = subprocess.Popen(
                self._into_cgroup() + ["timeout", "-k", "5", str(self.lifetime),
                 "unshare", "--mount", "--pid", "--net", "--fork", "--kill-child",
                 "--mount-proc", PYTHON, os.path.join(HERE, "sandbox_init.py")]
                + self.overlays,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=CLEAN_ENV, start_new_session=True)
        reader = LineReader(self.proc.stdout)
        try:
            line = reader.readline(30)
        except TimeoutError:
            line = "(no line within 30 s)"
        if line != "ready":
            self.close()
            with open(self.init_log, errors="replace") as f:
                raise SandboxError("sandbox setup failed: %s\n%s" % (line, f.read()))
        self.proc.stdout.close()
        # timeout -> unshare -> init (all exist once init has said ready).
        kids = _children(self.proc.pid)
        self.unshare_pid = kids[0] if kids else None
        kids = _children(self.unshare_pid) if self.unshare_pid else []
        if not kids:
            self.close()
            raise SandboxError("cannot find the sandbox's init process")
        self.init_pid = kids[0]

    def close(self):
        if self.unshare_pid:
            try:
                os.kill(self.unshare_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        if self.cgroup:
            _remove_cgroup(self.cgroup)
        for h in self.held:
            h.close()
        for d in self.daemons:
            d._join_reader()

    def _into_cgroup(self):
        """argv prefix that moves the command into the sandbox's cgroup."""
        if not self.cgroup:
            return []
        return ["sh", "-c", 'echo 0 > "$0" && exec "$@"',
                os.path.join(self.cgroup, "cgroup.procs")]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- running commands ----------------------------------------------

    def nsenter(self, argv, timeout=None):
        """argv prefixed to run inside (with `timeout -k 5 N` when timeout is set)."""
        prefix = self._into_cgroup() + [
            "nsenter", "--target", str(self.init_pid), "--mount", "--pid", "--net", "--wd=/", "--"]
        if timeout is not None:
            prefix += ["timeout", "-k", "5", str(timeout)]
        return prefix + list(argv)

    def run(self, argv, timeout=30, input=None, check=False, env=None):
        """Run argv (a list, or a string for sh -c) inside; returns CompletedProcess
        with text stdout/stderr and .elapsed (seconds). Raises CommandTimeout."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        full_env = dict(CLEAN_ENV)
        if env:
            full_env.update(env)
        t0 = time.monotonic()
        p = subprocess.Popen(self.nsenter(argv, timeout), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=full_env, start_new_session=True)
        try:
            out, err = p.communicate(input=input.encode() if isinstance(input, str) else input,
                                     timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise CommandTimeout("%s: no exit within %s s" % (shlex.join(argv), timeout))
        r = subprocess.CompletedProcess(argv, p.returncode, out.decode(errors="replace"),
                                        err.decode(errors="replace"))
        r.elapsed = time.monotonic() - t0
        if r.returncode == 124 and timeout is not None and r.elapsed >= timeout:
            raise CommandTimeout("%s: killed after %s s\nstdout: %s\nstderr: %s"
                                 % (shlex.join(argv), timeout, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise SandboxError("%s: exit %d\nstdout: %s\nstderr: %s"
                               % (shlex.join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def popen(self, argv, timeout=600, **kw):
        """Start argv inside in the background (its own process group)."""
        kw.setdefault("env", dict(CLEAN_ENV))
        return subprocess.Popen(self.nsenter(argv, timeout), start_new_session=True, **kw)

    # ---- files ---------------------------------------------------------

    def write_file(self, path, content, mode=0o644, owner=None):
        """Write a file inside; as owner (a user name: created by that user,
        parents included) or as root."""
        if isinstance(content, str):
            content = content.encode()
        script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" "$1"'
        argv = ["sh", "-c", script, "sh", path, "%o" % mode]
        if owner is not None:
            argv = self.as_user(owner, argv)
        self.run(argv, input=content, check=True)

    def read_file(self, path):
        return self.run(["cat", "--", path], check=True).stdout

    def exists(self, path):
        return self.run(["test", "-e", path]).returncode == 0

    def makedirs(self, path, mode=0o755, owner=None):
        argv = ["sh", "-c", 'mkdir -p -- "$1" && chmod "$2" "$1"', "sh", path, "%o" % mode]
        if owner is not None:
            argv = self.as_user(owner, argv)
        self.run(argv, check=True)

    def host_path(self, path):
        """The sandbox path seen from the host (through /proc/PID/root; absolute
        symlinks inside are resolved in the host's mount namespace)."""
        return "/proc/%d/root%s" % (self.init_pid, path)

    # ---- users and PAM -------------------------------------------------

    def add_user(self, name, shell="/bin/bash", groups=()):
        argv = ["useradd", "-m", "-s", shell]
        if groups:
            argv += ["-G", ",".join(groups)]
        self.run(argv + [name], check=True)
        return self.user(name)

    def user(self, name):
        """pwd entry of a user inside: dict name uid gid home shell."""
        r = self.run(["getent", "passwd", name], check=True)
        f = r.stdout.strip().split(":")
        return {"name": f[0], "uid": int(f[2]), "gid": int(f[3]), "home": f[5], "shell": f[6]}

    def as_user(self, user, argv):
        """argv run as user without a PAM session (setpriv, not runuser)."""
        gid = self.user(user)["gid"]
        return ["setpriv", "--reuid", user, "--regid", str(gid), "--init-groups",
                "--reset-env"] + list(argv)

    def write_pam_service(self, name, lines):
        self.write_file("/etc/pam.d/" + name, "".join(l + "\n" for l in lines))

    def pam_stack(self, module_args=None, socket=DEFAULT_SOCKET, record=True, module=True,
                  extra_session=()):
        """A minimal real login stack: root may su without a password,
        pam_unix session, the item recorder (pam_exec), the module (built,
        by absolute path, socket=socket plus module_args), then extra_session
        lines."""
        lines = [
            "auth     sufficient pam_rootok.so",
            "auth     required   pam_deny.so",
            "account  required   pam_permit.so",
            "password required   pam_deny.so",
            "session  required   pam_unix.so",
        ]
        if record:
            lines.append("session  optional   pam_exec.so quiet %s %s"
                         % (RECORD_PAM_ITEMS, PAM_ITEMS_LOG))
        if module:
            args = ["socket=" + socket] if socket else []
            args += list(module_args or [])
            lines.append("session  optional   %s %s" % (PAM_MODULE, " ".join(args)))
        lines += list(extra_session)
        return lines

    def wire_logins(self, **kw):
        """Point every login service the harness uses at pam_stack(**kw)."""
        self.makedirs(TEST_DIR)
        for s in LOGIN_SERVICES:
            self.write_pam_service(s, self.pam_stack(**kw))

    def pam_items(self):
        """What the logins' PAM stacks saw, one dict per pam_exec call:
        type service user tty rhost pid (pid of the process running PAM)."""
        if not self.exists(PAM_ITEMS_LOG):
            return []
        keys = ("type", "service", "user", "tty", "rhost", "pid")
        items = []
        for line in self.read_file(PAM_ITEMS_LOG).splitlines():
            d = dict(zip(keys, line.split("\t")))
            d["pid"] = int(d["pid"])
            items.append(d)
        return items

    # ---- logins --------------------------------------------------------

    def su(self, user, cmd, timeout=30, login=True, tty=False):
        argv = ["su"] + (["-l"] if login else []) + [user, "-c", cmd]
        return self._login(argv, timeout, tty)

    def runuser(self, user, cmd, timeout=30, login=True, tty=False):
        argv = ["runuser"] + (["-l"] if login else []) + [user, "-c", cmd]
        return self._login(argv, timeout, tty)

    def pamtester(self, service, user, *ops, items=(), timeout=30):
        """pamtester [-I item=value...] SERVICE USER OPS (default open+close)."""
        argv = ["pamtester", "-v"]
        for it in items:
            argv += ["-I", it]
        argv += [service, user] + list(ops or ("open_session", "close_session"))
        return self.run(argv, timeout=timeout)

    def pamlogin(self, service, user, argv, timeout=30, tty=False):
        """pamlogin.py: opens the session, runs argv as the user *without*
        pam_end in the child (like a display manager), then closes it."""
        return self._login([PYTHON, PAMLOGIN, service, user, "--"] + list(argv), timeout, tty)

    def _login(self, argv, timeout, tty):
        if tty:
            r = self.run([PYTHON, PTYRUN] + argv, timeout=timeout)
            lines = r.stdout.replace("\r", "").split("\n")
            if lines and lines[0].startswith("ptyrun-child "):
                r.login_pid = int(lines[0].split()[1])
                lines = lines[1:]
            r.stdout = "\n".join(lines)
            return r
        return self.run(argv, timeout=timeout)

    def hold(self, argv, timeout=30):
        """Start a login that stays open (see HeldLogin)."""
        h = HeldLogin(self, argv, timeout)
        self.held.append(h)
        return h

    def hold_su(self, user, timeout=30):
        return self.hold(["su", "-l", user, "-c", HeldLogin.SHELL_CMD], timeout)

    def hold_runuser(self, user, timeout=30):
        return self.hold(["runuser", "-l", user, "-c", HeldLogin.SHELL_CMD], timeout)

    def hold_pamlogin(self, service, user, timeout=30):
        return self.hold([PYTHON, PAMLOGIN, service, user, "--", "/bin/sh", "-c",
                          HeldLogin.SHELL_CMD], timeout)

    def pam_hold_service(self, **stack):
        """A new PAM service whose stack (pam_stack(**stack)) ends with
        pam-hold: any login through it stops inside pam_open_session, after
        the module has run, until released. Returns (service, hold_dir) for
        PamHold."""
        n = self._holds = getattr(self, "_holds", 0) + 1
        service = "dus-hold-%d" % n
        hold_dir = "%s/hold-%d" % (TEST_DIR, n)
        self.run(["sh", "-c", 'mkdir -p "$1" && mkfifo "$1/opened" "$1/release"', "sh",
                  hold_dir], check=True)
        self.write_pam_service(service, self.pam_stack(
            extra_session=["session  required   pam_exec.so %s %s" % (PAM_HOLD, hold_dir)],
            **stack))
        return service, hold_dir

    def hold_pamtester(self, user, items=(), timeout=30, **stack):
        """pamtester SERVICE USER open_session close_session, held inside
        pam_open_session (PamHold)."""
        service, hold_dir = self.pam_hold_service(**stack)
        argv = ["pamtester", "-v"]
        for it in items:
            argv += ["-I", it]
        argv += [service, user, "open_session", "close_session"]
        h = PamHold(self, argv, service, hold_dir, timeout)
        self.held.append(h)
        return h

    # ---- the daemon ----------------------------------------------------

    def start_daemon(self, config=None, args=(), timeout=20, nofile=(1024, None),
                     wait_ready=True, binary=None, wrap=()):
        """Write the config (harness defaults updated with config) and start the
        daemon inside with --ready-fd; returns a Daemon once it is ready.
        nofile: (soft, hard) RLIMIT_NOFILE to start it with (None: unchanged;
        the default is a service's soft limit of 1024), or None. binary: the
        daemon's path inside (default: the build's). wrap: argv of a command
        that execs its arguments (the daemon's command line)."""
        d = Daemon(self, config or {}, args, timeout, nofile, wait_ready, binary, wrap)
        return d

    def ctl(self, *args, socket=DEFAULT_SOCKET, timeout=20, as_user=None):
        argv = [CTL, "--socket", socket] + list(args)
        if as_user:
            argv = self.as_user(as_user, argv)
        return self.run(argv, timeout=timeout)

    def ctl_json(self, *args, socket=DEFAULT_SOCKET, timeout=20, as_user=None):
        r = self.ctl("--json", *args, socket=socket, timeout=timeout, as_user=as_user)
        if r.returncode != 0:
            raise SandboxError("dinit-userservctl --json %s: exit %d: %s"
                               % (" ".join(args), r.returncode, r.stderr.strip()))
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise SandboxError("dinit-userservctl --json %s: not JSON (%s): %r"
                               % (" ".join(args), e, r.stdout))

    def sessions(self, socket=DEFAULT_SOCKET):
        return self.ctl_json("list-sessions", socket=socket)

    def users(self, socket=DEFAULT_SOCKET):
        return self.ctl_json("list-users", socket=socket)

    def wait_for(self, probe, timeout=5, interval=0.02, what="condition"):
        """Call probe() until it returns a true value (returned) or the deadline
        passes (CommandTimeout naming the last value). For state that has no
        event to wait on, e.g. polling the CLI."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CommandTimeout("%s not reached within %s s (last: %r)"
                                     % (what, timeout, value))
            time.sleep(interval)

    def proto(self, *args, as_user=None, timeout=20, input=None):
        """Run dusproto.py (the Python wire client) inside; returns its JSON output."""
        argv = [PYTHON, DUSPROTO] + list(args)
        if as_user:
            argv = self.as_user(as_user, argv)
        r = self.run(argv, timeout=timeout, input=input)
        if r.returncode != 0:
            raise SandboxError("dusproto %s: exit %d: %s" % (args, r.returncode, r.stderr))
        return json.loads(r.stdout)


class HeldLogin:
    """A login that stays open until the test ends it.

    The login command runs on a pty (ptyrun.py); its shell prints its tty and
    environment, then STARTED, then waits for a line on the pty. .pid is the
    pid (inside the sandbox) of the process that opened the PAM session
    (su's or runuser's parent, pamlogin.py). .tty and .env are what the
    session's shell saw.
    """

    SHELL_CMD = ('printf "tty=%%s\\n" "$(tty)"; env | sed "s/^/env:/"; echo %s; read -r line; '
                 'echo "got:$line"' % STARTED)

    def __init__(self, sandbox, argv, timeout):
        self.sandbox = sandbox
        self.argv = argv
        self.proc = sandbox.popen([PYTHON, PTYRUN] + list(argv), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = LineReader(self.proc.stdout)
        self.returncode = None
        first = self.reader.read_until(lambda l: l.startswith("ptyrun-child "), timeout,
                                       "ptyrun-child line")
        self.pid = int(self.reader.lines[len(first)].split()[1])
        self.pre_output = self.reader.read_until(lambda l: l == STARTED, timeout,
                                                 "%s from %s" % (STARTED, shlex.join(argv)))
        self.tty = None
        self.env = {}
        for l in self.pre_output:
            if l.startswith("tty="):
                self.tty = l[4:]
            elif l.startswith("env:") and "=" in l:
                k, v = l[4:].split("=", 1)
                self.env[k] = v

    def end(self, timeout=10):
        """Let the shell exit (normal logout); returns the login's exit status."""
        try:
            self.proc.stdin.write(b"done\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.post_output = self.reader.read_rest(timeout)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout("login %s did not exit" % shlex.join(self.argv))
        return self.returncode

    def kill9(self):
        """SIGKILL the process that opened the session (inside the sandbox)."""
        self.sandbox.run(["kill", "-KILL", str(self.pid)], check=True)

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class PamHold:
    """A login stopped inside pam_open_session by pam-hold (see
    Sandbox.pam_hold_service). .pid is the pid (inside the sandbox) of the
    process running PAM; release() lets it go on (for pamtester: close the
    session and exit); kill9() kills it instead."""

    def __init__(self, sandbox, argv, service, hold_dir, timeout):
        self.sandbox = sandbox
        self.argv = argv
        self.service = service
        self.hold_dir = hold_dir
        self.returncode = None
        self.output = ""
        self.proc = sandbox.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        try:
            r = sandbox.run(["cat", hold_dir + "/opened"], timeout=timeout, check=True)
        except CommandTimeout:
            self.close()
            raise CommandTimeout("%s never reached pam-hold" % shlex.join(argv))
        self.pid = int(r.stdout)

    def release(self, timeout=10):
        """Let the login go on; returns its exit status (output in .output)."""
        self.sandbox.run(["sh", "-c", 'echo go > "$1"', "sh", self.hold_dir + "/release"],
                         timeout=timeout, check=True)
        return self.wait(timeout)

    def wait(self, timeout=10):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout("%s did not exit" % shlex.join(self.argv))
        self.output = out.decode(errors="replace")
        self.returncode = self.proc.returncode
        return self.returncode

    def kill9(self):
        self.sandbox.run(["kill", "-KILL", str(self.pid)], check=True)

    def close(self):
        """Kill the nsenter process on the host side (what runs inside dies
        with the sandbox)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        try:
            self.proc.stdout.close()
        except OSError:
            pass


DEFAULT_CONFIG = {
    "socket_path": DEFAULT_SOCKET,
    "state_dir": "/run/dinit-userservd",
    "linger_dir": "/var/lib/dinit-userservd/linger",
    "backend": "none",
    "login_timeout": 10,
    "stop_delay": 0,
    "stop_timeout": 5,
    "debug": True,
}


def config_text(config):
    """key = value lines; True/False as yes/no, a list as one line per item."""
    out = []
    for k, v in config.items():
        if v is None:
            continue
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(item, bool):
                item = "yes" if item else "no"
            out.append("%s = %s\n" % (k, item))
    return "".join(out)


class Daemon:
    """dinit-userservd running inside a sandbox.

    .pid is its pid inside, .host_pid on the host; .log() its stderr so far;
    wait_log(regex) waits for a log line (an event, no polling)."""

    def __init__(self, sandbox, config, args, timeout, nofile, wait_ready, binary=None, wrap=()):
        self.sandbox = sandbox
        self.config = dict(DEFAULT_CONFIG)
        self.config.update(config)
        self.socket = self.config.get("socket_path") or DEFAULT_SOCKET
        n = len(sandbox.daemons)
        self.config_path = "%s/dinit-userservd%s.conf" % (TEST_DIR, "-%d" % n if n else "")
        sandbox.makedirs(TEST_DIR)
        sandbox.write_file(self.config_path, config_text(self.config))
        self.log_path = os.path.join(sandbox.workdir, "daemon%s.log" % ("-%d" % n if n else ""))
        self._lines = []
        self._cond = threading.Condition()
        self._eof = False

        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        argv = list(wrap) + [binary or DAEMON, "-c", self.config_path, "--ready-fd", str(wfd)] + list(args)
        if nofile:
            soft, hard = nofile
            argv = ["prlimit", "--nofile=%s:%s" % ("" if soft is None else soft,
                                                   "" if hard is None else hard), "--"] + argv
        env = dict(CLEAN_ENV)
        env["DINIT_USERSERVD_LIBEXECDIR"] = LIBEXEC_DIR
        os.set_inheritable(wfd, True)
        try:
            self.proc = subprocess.Popen(sandbox.nsenter(argv), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         pass_fds=(wfd,), env=env, start_new_session=True)
        finally:
            os.close(wfd)
        sandbox.daemons.append(self)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

        self.host_pid = None
        self.pid = None
        self.ready_line = None
        with os.fdopen(rfd, "rb") as ready:
            if not wait_ready:
                return
            reader = LineReader(ready)
            try:
                self.ready_line = reader.readline(timeout)
            except TimeoutError:
                raise SandboxError("daemon not ready within %s s; log:\n%s" % (timeout, self.log()))
            if self.ready_line is None:
                code = self.wait(5)
                raise SandboxError("daemon exited (%s) before it was ready; log:\n%s"
                                   % (code, self.log()))
        self._find_pid()

    def _find_pid(self):
        # nsenter -> (prlimit execs) daemon
        kids = _children(self.proc.pid)
        if not kids:
            raise SandboxError("daemon process not found; log:\n" + self.log())
        self.host_pid = kids[0]
        self.pid = _ns_pid(self.host_pid)

    def _read_log(self):
        with open(self.log_path, "wb") as out:
            for raw in self.proc.stdout:
                out.write(raw)
                out.flush()
                with self._cond:
                    self._lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _join_reader(self):
        self._reader.join(timeout=10)
        try:
            self.proc.stdout.close()
        except OSError:
            pass

    def log(self):
        with self._cond:
            return "\n".join(self._lines)

    def log_lines(self):
        with self._cond:
            return list(self._lines)

    def wait_log(self, pattern, timeout=5, start=0):
        """Wait for a log line matching regex pattern (from line index start);
        returns the line. Raises CommandTimeout with the log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self._lines):
                    if rx.search(self._lines[i]):
                        return self._lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise CommandTimeout("no log line matching %r within %s s; log:\n%s"
                                         % (pattern, timeout, "\n".join(self._lines)))
                self._cond.wait(left)

    def mark(self):
        """Index to pass as wait_log(start=...) to see only lines from now on."""
        with self._cond:
            return len(self._lines)

    def signal(self, sig):
        os.kill(self.host_pid, sig)

    def wait(self, timeout=10):
        """Wait for the daemon to exit; returns its exit status (negative:
        killed by that signal, as nsenter passes it on)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout("daemon still running after %s s; log:\n%s"
                                 % (timeout, self.log()))

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        return self.wait(10)

    def running(self):
        return self.proc.poll() is None

    def ctl(self, *args, **kw):
        return self.sandbox.ctl(*args, socket=self.socket, **kw)

    def ctl_json(self, *args, **kw):
        return self.sandbox.ctl_json(*args, socket=self.socket, **kw)

    def sessions(self):
        return self.ctl_json("list-sessions")

    def users(self):
        return self.ctl_json("list-users")
