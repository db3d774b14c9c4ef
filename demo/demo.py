#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""The live demonstration of dinit-userservd, run by demo/run (as root).

    python3 demo/demo.py --build-dir DIR [--backend auto|dinit|runit] [--user NAME]

Everything happens in a throwaway namespace sandbox (tests/integration/sandbox.py:
private mount, pid and net namespaces, fresh tmpfs on /run /home /tmp /var/log,
overlays on /etc and /var/lib, a reaping PID 1), so the host is left as it was.
In it, step by step: the daemon starts from the build dir; the PAM module goes into
Debian's common-session; a demo user gets autostart services (a greeter and the
D-Bus session bus); `su -l USER` logs in on a pty and shows, from inside, what the
login got; dinit-userservctl shows the user from outside; the login ends and the
cleanup is shown. Each claim is checked; the first failed check ends the demo
with exit status 1 and the reason. Exit 0: everything shown was checked.

The environment variables DUS_DAEMON, DUS_CTL, DUS_PAM_MODULE and
DUS_LIBEXEC_DIR replace single artefacts of the build dir, as in the
integration tests (tests/README.md).
"""
import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS = os.path.join(REPO, "tests", "integration")

# Small delays so the demo runs in seconds; the defaults are larger (see
# dinit-userservd.conf(5)).
STOP_DELAY = 2
STOP_TIMEOUT = 5
LOGIN_TIMEOUT = 20

DEMO_DIR = "/run/dinit-userservd-demo"  # inside the sandbox (a private tmpfs)
SOCKET = "/run/dinit-userservd/control.sock"  # the default one


class DemoFailed(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM (e.g. demo/run's timeout): unwinds like Ctrl-C."""


# ---- output ---------------------------------------------------------------------

checks_passed = 0


def out(text=""):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def step(n, total, title, *why):
    """A numbered step: its title, then what it shows and why (one line each)."""
    out()
    out("[%d/%d] %s" % (n, total, title))
    for line in why:
        out("      " + line)
    out()


def block(text, prefix="        "):
    lines = text.rstrip("\n").splitlines() if text.strip() else ["(nothing)"]
    for line in lines:
        out(prefix + line)


def command(label, text):
    out("    %s %s" % (label, text))


def check(cond, what, detail=None):
    global checks_passed
    if not cond:
        raise DemoFailed(what + (":\n" + detail if detail else ""))
    checks_passed += 1
    out("    [ok] " + what)


# ---- the sandbox ----------------------------------------------------------------

def load_harness(build_dir):
    """Import tests/integration/sandbox.py with its artefacts from build_dir
    (DUS_DAEMON, DUS_CTL, DUS_PAM_MODULE, DUS_LIBEXEC_DIR override single ones,
    as in the tests: the sanitizer pass runs the demo with the plain module)."""
    os.environ["DUS_BUILD_DIR"] = build_dir
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, HARNESS)
    import sandbox  # noqa: E402 (needs DUS_BUILD_DIR first)
    return sandbox


def host_fingerprint(user):
    """What the demo must not change on the host: the user database, the PAM
    session stack, /run/user and the daemon's socket."""
    def digest(path):
        try:
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            return "unreadable: %s" % e.strerror
    return {
        "/etc/passwd": digest("/etc/passwd"),
        "/etc/group": digest("/etc/group"),
        "/etc/pam.d/common-session": digest("/etc/pam.d/common-session"),
        "/home/" + user: os.path.exists("/home/" + user),
        SOCKET: os.path.exists(SOCKET),
    }


def pick_backend(wanted):
    """dinit when asked or, with auto, when a dinit >= 0.18 is on PATH; else runit.
    Returns (backend, dinit path or None, note)."""
    dinit = shutil.which("dinit")
    if wanted == "runit":
        return "runit", None, "runit (asked for with --backend runit)"
    if dinit is None:
        if wanted == "dinit":
            raise DemoFailed("--backend dinit: no dinit on PATH")
        return "runit", None, "runit (no dinit on PATH; Debian 12 does not package dinit)"
    try:
        r = subprocess.run([dinit, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
        version = (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else ""
    except (OSError, subprocess.TimeoutExpired) as e:
        version = ""
        if wanted == "dinit":
            raise DemoFailed("%s --version: %s" % (dinit, e))
    m = re.search(r"(\d+)\.(\d+)", version)
    new_enough = m is not None and (int(m.group(1)), int(m.group(2))) >= (0, 18)
    if not new_enough:
        if wanted == "dinit":
            raise DemoFailed("%s is %r; the dinit backend needs dinit >= 0.18" % (dinit, version))
        return "runit", None, "runit (%s is %r, older than the 0.18 the backend needs)" % (
            dinit, version)
    return "dinit", dinit, "dinit (%s: %s)" % (dinit, version)


GREETER_RUNIT = """#!/bin/sh
# A user service (runit): writes a greeting, then keeps running.
exec 2>&1
echo "Hello from $USER's greeter service, started at $(date +%T) by runit" > "$HOME/greeting.txt"
exec sleep infinity
"""

GREETER_RUNIT_CHECK = """#!/bin/sh
# Ready once the greeting is written: the login waits for this.
test -s "$HOME/greeting.txt"
"""

GREETER_DINIT_SCRIPT = """#!/bin/sh
# A user service (dinit): writes a greeting, tells dinit it is ready (fd 3),
# then keeps running.
echo "Hello from $USER's greeter service, started at $(date +%T) by dinit" > "$HOME/greeting.txt"
echo ready >&3
exec 3>&-
exec sleep infinity
"""

GREETER_DINIT = """# A user service (dinit): started at login through the link in boot.d.
type = process
command = {home}/.local/bin/greeter
ready-notification = pipefd:3
"""

SESSION_SCRIPT = r"""#!/bin/bash
# Run by the demo inside USER's login (su -l USER): shows what the login got.
show() {
	printf '    %s$ %s\n' "$USER" "$1"
	bash -c "$1" 2>&1 | sed 's/^/        /'
}
show @STATUS@
show 'cat ~/greeting.txt'
show 'echo "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"'
show 'stat -c "%A %U:%G %n" "$XDG_RUNTIME_DIR"'
show 'ls -l "$XDG_RUNTIME_DIR"'
show 'echo "DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS"'
show 'dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetId'
show 'ps -u "$USER" -o pid,sid,args --forest'
echo @DONE@
read -r line
"""


def run_demo(sb, args):
    user = args.user
    total = 8
    backend, dinit, backend_note = pick_backend(args.backend)
    host_before = host_fingerprint(user)

    # ---- 1 -------------------------------------------------------------------
    step(1, total, "A throwaway sandbox",
         "Its own mount, PID and network namespaces; fresh tmpfs on /run, /home, /tmp and",
         "/var/log; overlays on /etc and /var/lib (writes land in memory). /usr and the",
         "build dir are the host's (nothing writes there). Nothing here outlives the demo.")
    workdir = tempfile.mkdtemp(prefix="dinit-userservd-demo-")
    box = sb.Sandbox(workdir, lifetime=600)
    try:
        run_in_sandbox(sb, box, args, user, total, backend, dinit, backend_note)
    except BaseException:
        out()
        for d in box.daemons:
            out("---- daemon log ----")
            block(d.log(), prefix="    ")
        box.close()
        out("(sandbox logs kept in %s)" % workdir)
        raise
    box.close()
    shutil.rmtree(workdir, ignore_errors=True)

    # ---- the host ------------------------------------------------------------
    host_after = host_fingerprint(user)
    changed = [k for k in host_before if host_before[k] != host_after[k]]
    out()
    out("The sandbox is gone, and with it the user, the PAM line and the daemon.")
    check(not changed, "the host is as it was (/etc/passwd, /etc/group, "
          "/etc/pam.d/common-session, /home/%s, %s)" % (user, SOCKET),
          "changed: %s" % ", ".join(changed))
    out()
    out("demo: all %d checks passed (backend %s)." % (checks_passed, backend))


def run_in_sandbox(sb, box, args, user, total, backend, dinit, backend_note):
    def sh(cmd):
        return box.run(cmd, timeout=30)

    block("sandbox PID 1 is host pid %d; inside it, `ps -e` shows only the sandbox:" % box.init_pid,
          prefix="    ")
    command("#", "ps -e -o pid,args")
    block(sh("ps -e -o pid,args").stdout)
    check(sh("test ! -e %s" % shlex.quote(SOCKET)).returncode == 0,
          "no dinit-userservd runs in the sandbox yet (no %s)" % SOCKET)

    # ---- 2 -------------------------------------------------------------------
    step(2, total, "Start the daemon (dinit-userservd)",
         "Backend: %s." % backend_note,
         "It runs as root in the foreground and logs to stderr (shown here). stop_delay",
         "is %d s (default 10) so that the cleanup shows quickly." % STOP_DELAY)
    config = {
        "backend": backend,
        "login_timeout": LOGIN_TIMEOUT,
        "stop_delay": STOP_DELAY,
        "stop_timeout": STOP_TIMEOUT,
        "debug": False,
    }
    if dinit:
        # The manager's PATH: where dinit is, then the usual ones.
        config["manager_env"] = ["PATH=%s:/usr/local/bin:/usr/bin:/bin" % os.path.dirname(dinit)]
    d = box.start_daemon(config, timeout=20)
    command("#", "cat %s" % d.config_path)
    block(box.read_file(d.config_path))
    command("#", "dinit-userservd -c %s   (the daemon's log:)" % d.config_path)
    block("\n".join(d.log_lines()))
    check(d.running(), "the daemon is up and listening on %s" % SOCKET)

    # ---- 3 -------------------------------------------------------------------
    step(3, total, "Enable the PAM module",
         "Debian's su -l includes common-session: the module goes at its end (after",
         "pam_systemd or pam_elogind, if there), as an admin would add it. Here it is named",
         "by its path in the build dir; installed, the line is",
         "    session optional pam_dinit_userservd.so")
    line = "session optional %s" % sb.PAM_MODULE
    command("#", "echo '%s' >> /etc/pam.d/common-session" % line)
    r = box.run(["sh", "-c", 'printf "%s\\n" "$1" >> /etc/pam.d/common-session', "sh", line])
    command("#", "grep -v '^#' /etc/pam.d/common-session")
    block(sh("grep -v '^#' /etc/pam.d/common-session | grep .").stdout)
    check(r.returncode == 0, "the module ends the session stack (inside the sandbox)", r.stderr)

    # ---- 4 -------------------------------------------------------------------
    if backend == "runit":
        where = "~/.config/service (a runit scan directory: every service in it starts at login)"
    else:
        where = "~/.config/dinit.d, started at login through links in ~/.config/dinit.d/boot.d"
    step(4, total, "Create the user %s and their autostart services" % user,
         "Services live in %s:" % where,
         "  greeter  writes ~/greeting.txt, then keeps running;",
         "  dbus     the D-Bus session bus on $XDG_RUNTIME_DIR/bus (data/backends/%s/dbus)," % backend,
         "           so that the login gets DBUS_SESSION_BUS_ADDRESS.")
    r = box.run(["useradd", "-m", "-s", "/bin/bash", user])
    check(r.returncode == 0, "useradd -m %s" % user,
          r.stderr + ("(choose another name with --user)" if "exists" in r.stderr else ""))
    pw = box.user(user)
    uid, home = pw["uid"], pw["home"]
    rundir = "/run/user/%d" % uid
    write_services(box, backend, user, home)
    command("#", "find %s/.config %s/.local -type f -o -type l | sort" % (home, home))
    block(sh("find %s/.config %s/.local -type f -o -type l 2>/dev/null | sort"
             % (shlex.quote(home), shlex.quote(home))).stdout)
    if backend == "runit":
        command("#", "cat %s/.config/service/greeter/run" % home)
        block(box.read_file("%s/.config/service/greeter/run" % home))
    else:
        command("#", "cat %s/.config/dinit.d/greeter" % home)
        block(box.read_file("%s/.config/dinit.d/greeter" % home))
    out()
    out("    Before the login: the daemon knows no user, %s runs nothing, and there is no %s."
        % (user, rundir))
    command("#", "dinit-userservctl list-users")
    block(box.ctl("list-users").stdout)
    check(d.users() == [], "no users known to the daemon")
    check(sh("pgrep -u %d" % uid).returncode == 1, "no processes of %s" % user)
    check(not box.exists(rundir), "%s does not exist" % rundir)

    # ---- 5 -------------------------------------------------------------------
    step(5, total, "Log in: su -l %s" % user,
         "A real login on a pseudo-terminal, through the PAM stack above. The module asks",
         "the daemon for a session; the daemon starts %s's service manager (as %s, outside" % (user, user),
         "the login's process tree), and the login goes on once the autostart services are",
         "up. What follows runs in the login's shell as soon as the login is through:")
    box.makedirs(DEMO_DIR)
    # What the manager itself says of its services: sv, or dinitctl when one
    # comes with the dinit in use (the stand-in the tests use has none).
    if backend == "runit":
        status_cmd = "sv status ~/.config/service/*"
    else:
        status_cmd = shutil.which("dinitctl", path=os.path.dirname(dinit))
        status_cmd = status_cmd and status_cmd + " list"
    # The harness's HeldLogin reads the login's output up to its marker line.
    script = SESSION_SCRIPT.replace(
        "show @STATUS@\n", "show %s\n" % shlex.quote(status_cmd) if status_cmd else "")
    script = script.replace("@DONE@", sb.STARTED)
    box.write_file(DEMO_DIR + "/in-session.sh", script, mode=0o755)
    mark = d.mark()
    login = box.hold(["su", "-l", user, "-c", "bash %s/in-session.sh" % DEMO_DIR], timeout=60)
    shown = login.pre_output
    block("\n".join(shown), prefix="")
    out()
    text = "\n".join(shown)
    if backend == "runit":
        for svc in ("greeter", "dbus"):
            check(re.search(r"^\s*run: %s/\.config/service/%s: \(pid \d+\)"
                            % (re.escape(home), svc), text, re.M),
                  "runit reports the %s service running at the prompt" % svc, text)
    elif status_cmd:
        for svc in ("greeter", "dbus"):
            # dinitctl list: "[{+}     ] name" or "[[+]     ] name" when started.
            check(re.search(r"^\s*\[[\[{]\+[\]}]\s*\]\s+%s\b" % svc, text, re.M),
                  "dinit reports the %s service started at the prompt" % svc, text)
    check(re.search(r"^\s*Hello from %s's greeter service" % re.escape(user), text, re.M),
          "the greeter had already written ~/greeting.txt", text)
    check(re.search(r"^\s*XDG_RUNTIME_DIR=%s$" % re.escape(rundir), text, re.M),
          "XDG_RUNTIME_DIR=%s" % rundir, text)
    check(re.search(r"^\s*drwx------ %s:\S+ %s$" % (re.escape(user), re.escape(rundir)),
                    text, re.M),
          "%s is mode 0700, owned by %s" % (rundir, user), text)
    bus = "unix:path=%s/bus" % rundir
    check(re.search(r"^\s*DBUS_SESSION_BUS_ADDRESS=%s$" % re.escape(bus), text, re.M),
          "DBUS_SESSION_BUS_ADDRESS=%s" % bus, text)
    check(re.search(r"^\s*method return .*\n\s*string \"[0-9a-f]{32}\"", text, re.M),
          "the session bus answers dbus-send", text)
    # ps --forest: "PID SID COMMAND" rows; the login's shell runs in-session.sh.
    sids = {}
    for row in re.findall(r"^\s*(\d+)\s+(\d+)\s+(?:[ |\\_]*)(.*)$", text, re.M):
        sids.setdefault(row[2].split(" ")[0], row[1])
    login_sid = sids.get("bash")
    svc_sid = sids.get("sleep")
    check(login_sid and svc_sid and login_sid != svc_sid,
          "the services run apart from the login (session %s, the login's is %s)"
          % (svc_sid, login_sid), text)

    # ---- 6 -------------------------------------------------------------------
    step(6, total, "From outside, while %s is logged in" % user,
         "dinit-userservctl asks the daemon over its control socket (anyone may read).",
         "The daemon's log tells the story of the login.")
    command("#", "dinit-userservctl status %s" % user)
    r = box.ctl("status", user)
    block(r.stdout + r.stderr)
    info = d.ctl_json("status", user)
    check(r.returncode == 0 and info.get("state") == "ready",
          "the manager is ready (state ready, backend %s, pid %s)"
          % (info.get("backend"), info.get("manager_pid")), json.dumps(info))
    check(info.get("rundir") == rundir and len(info.get("sessions", [])) == 1,
          "one session, rundir %s" % rundir, json.dumps(info))
    manager_pid = info.get("manager_pid")
    command("#", "dinit-userservd's log since the login:")
    block("\n".join(d.log_lines()[mark:]))
    procs = sh("ps -u %d -o pid=,args=" % uid).stdout
    user_pids = [int(l.split()[0]) for l in procs.splitlines() if l.strip()]
    check(manager_pid in user_pids,
          "%s's processes include the manager (pid %s)" % (user, manager_pid), procs)

    # ---- 7 -------------------------------------------------------------------
    step(7, total, "Log out",
         "The login's shell exits and su closes the PAM session. The daemon waits stop_delay",
         "(%d s) for another login, then stops the manager, which stops the services, and" % STOP_DELAY,
         "removes %s." % rundir)
    mark = d.mark()
    t0 = time.monotonic()
    code = login.end(timeout=20)
    check(code == 0, "su -l %s exited 0" % user, "exit status %s" % code)
    try:
        d.wait_log(r"the manager of %s stopped" % re.escape(user),
                   timeout=STOP_DELAY + STOP_TIMEOUT + 15, start=mark)
    except sb.CommandTimeout as e:
        raise DemoFailed("the manager was not stopped after the logout: %s" % e)
    try:
        d.wait_log(r"removed %s$" % re.escape(rundir), timeout=10, start=mark)
    except sb.CommandTimeout as e:
        raise DemoFailed("%s was not removed after the manager stopped: %s" % (rundir, e))
    stopped_s = time.monotonic() - t0
    command("#", "dinit-userservd's log since the logout:")
    block("\n".join(d.log_lines()[mark:]))
    out()
    out("    The manager stopped %.1f s after the logout (stop_delay = %d s)."
        % (stopped_s, STOP_DELAY))

    # ---- 8 -------------------------------------------------------------------
    step(8, total, "After the logout: everything is cleaned up",
         "No process of %s is left (manager and services alike), the runtime directory" % user,
         "is gone, and the daemon no longer lists the user.")
    command("#", "ps -u %s -o pid,args" % user)
    # Processes killed at the stop may take a moment to finish exiting.
    try:
        box.wait_for(lambda: sh("ps -u %d -o pid=,args=" % uid).stdout.strip() == "",
                     timeout=5, what="no process of %s" % user)
    except sb.CommandTimeout:
        pass
    left = sh("ps -u %d -o pid=,args=" % uid).stdout
    block(left)
    check(left.strip() == "", "no process of %s is left" % user, left)
    gone = [p for p in user_pids if box.run(["kill", "-0", str(p)]).returncode != 0]
    check(len(gone) == len(user_pids),
          "the %d processes of %s seen during the session (the login's shell, the manager "
          "pid %s and its services) are gone" % (len(user_pids), user, manager_pid),
          "still there: %s" % sorted(set(user_pids) - set(gone)))
    command("#", "ls -ld %s" % rundir)
    r = sh("ls -ld %s" % rundir)
    block(r.stdout + r.stderr)
    check(not box.exists(rundir), "%s is gone" % rundir)
    try:
        box.wait_for(lambda: d.users() == [], timeout=10, what="an empty list-users")
    except sb.CommandTimeout as e:
        raise DemoFailed(str(e))
    command("#", "dinit-userservctl list-users")
    block(box.ctl("list-users").stdout)
    check(d.users() == [], "the daemon lists no users")
    code = d.stop(timeout=STOP_TIMEOUT + 10)
    check(code == 0, "the daemon exits 0 on SIGTERM", "exit status %s" % code)


def write_services(box, backend, user, home):
    data = os.path.join(REPO, "data", "backends", backend, "dbus")
    if backend == "runit":
        base = home + "/.config/service"
        box.write_file(base + "/greeter/run", GREETER_RUNIT, mode=0o755, owner=user)
        box.write_file(base + "/greeter/check", GREETER_RUNIT_CHECK, mode=0o755, owner=user)
        for name in ("run", "check"):
            with open(os.path.join(data, name)) as f:
                box.write_file(base + "/dbus/" + name, f.read(), mode=0o755, owner=user)
        return
    base = home + "/.config/dinit.d"
    box.write_file(home + "/.local/bin/greeter", GREETER_DINIT_SCRIPT, mode=0o755, owner=user)
    box.write_file(base + "/greeter", GREETER_DINIT.format(home=home), owner=user)
    with open(data) as f:
        box.write_file(base + "/dbus", f.read(), owner=user)
    box.run(box.as_user(user, ["sh", "-c", 'mkdir -p "$1/boot.d" && ln -s ../greeter ../dbus '
                               '"$1/boot.d/"', "sh", base]), check=True)


def main():
    ap = argparse.ArgumentParser(description="dinit-userservd live demo (see demo/run)")
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--backend", choices=("auto", "dinit", "runit"), default="auto")
    ap.add_argument("--user", default="demo")
    args = ap.parse_args()
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", args.user):
        out("demo: FAILED: --user %r is not a plain user name" % args.user)
        return 2

    def on_sigterm(*_):
        raise Terminated()
    # The sandbox is torn down on the way out (run_demo).
    signal.signal(signal.SIGTERM, on_sigterm)
    build_dir = os.path.abspath(args.build_dir)
    try:
        if os.geteuid() != 0:
            raise DemoFailed("must run as root")
        sb = load_harness(build_dir)
        artefacts = (sb.DAEMON, sb.CTL, sb.PAM_MODULE, sb.LIBEXEC_DIR)
        for path in artefacts:
            for private in sb.PRIVATE_PATHS:
                if path.startswith(private + "/"):
                    raise DemoFailed("%s is under %s, which the sandbox replaces: build "
                                     "elsewhere (e.g. /var/tmp/dinit-userservd-demo)"
                                     % (path, private))
        missing = [p for p in artefacts if not os.path.exists(p)]
        if missing:
            raise DemoFailed("not built: %s (run demo/run without --no-install)"
                             % ", ".join(missing))
        out("Everything below runs in a throwaway sandbox, from the build in %s." % build_dir)
        run_demo(sb, args)
    except DemoFailed as e:
        out()
        out("demo: FAILED: %s" % e)
        return 1
    except (KeyboardInterrupt, Terminated) as e:
        out()
        out("demo: FAILED: %s (the sandbox was torn down)"
            % ("terminated" if isinstance(e, Terminated) else "interrupted"))
        return 143 if isinstance(e, Terminated) else 130
    except Exception as e:  # the harness's own errors (timeouts, setup)
        out()
        out("demo: FAILED: %s: %s" % (type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
