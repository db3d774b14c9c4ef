# SPDX-License-Identifier: BSD-2-Clause
"""Issue 7 acceptance: 50 distinct users logging in at once, 3 rounds.

Every user has a runit service whose `check` says up once it has run; the
50 logins (su -l, started together by a driver inside the sandbox) must all
be served: exit 0, the service up before the login's command runs, the
runtime directory exported, and the session listed (from inside, by the
user) with the pid of the login. After each round, with stop_delay 0,
everything is cleaned up: no session, no user, no process of any of the
users, no runtime directory, no per-user cgroup, and the daemon holds no
more file descriptors than before. The daemon's log has no sanitizer report
(tests/run --ci runs this suite again against the ASan+UBSan daemon), and
SIGTERM at the end exits 0 (LeakSanitizer would make it non-zero).
"""
import json
import os
import re
import time

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

N_USERS = 50
ROUNDS = 3
SANITIZER_REPORT = re.compile(r"ERROR: \w*Sanitizer|runtime error:|WARNING: \w*Sanitizer|"
                              r"SUMMARY: \w*Sanitizer")

# Runs inside as root: starts `su -l USER -c CMD` for every user at once,
# waits for all (each with a deadline), prints one JSON line per login.
DRIVER = r"""
import json, subprocess, sys, time
users, cmd, timeout = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3])
t0 = time.monotonic()
procs = [(u, time.monotonic(), subprocess.Popen(["su", "-l", u, "-c", cmd],
          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
         for u in users]
for u, start, p in procs:
    try:
        out, _ = p.communicate(timeout=max(timeout - (time.monotonic() - t0), 0.1))
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        rc = "timeout"
    print(json.dumps({"user": u, "pid": p.pid, "rc": rc, "elapsed": time.monotonic() - start,
                      "out": out.decode(errors="replace")}), flush=True)
"""

# What each login runs, as the user: the service's state, the runtime dir,
# and the sessions as the daemon lists them.
LOGIN_CMD = ('test -e "$HOME/svc-up" && echo SERVICE-UP || echo SERVICE-DOWN; '
             'echo "RUNDIR=$XDG_RUNTIME_DIR"; %s --socket %s --json list-sessions'
             % (sb.CTL, sb.DEFAULT_SOCKET))


def make_users(world, names):
    script = (
        'for u in "$@"; do\n'
        '  useradd -m -s /bin/bash "$u" || exit 1\n'
        '  d=/home/$u/.config/service/svc\n'
        '  mkdir -p "$d"\n'
        '  printf \'#!/bin/sh\\ntouch "$HOME/svc-up"\\nexec sleep 100000\\n\' > "$d/run"\n'
        '  printf \'#!/bin/sh\\ntest -e "$HOME/svc-up"\\n\' > "$d/check"\n'
        '  chmod 755 "$d/run" "$d/check"\n'
        '  chown -R "$u:$u" "/home/$u/.config"\n'
        'done\n')
    world.run(["sh", "-c", script, "sh"] + names, timeout=600, check=True)
    r = world.run(["getent", "passwd"] + names, check=True)
    return {l.split(":")[0]: int(l.split(":")[2]) for l in r.stdout.splitlines()}


def procs_of(world, uids):
    r = world.run(["ps", "-e", "-ww", "-o", "pid=,uid=,args="], check=True)
    out = []
    for line in r.stdout.splitlines():
        f = line.split(None, 2)
        if len(f) == 3 and int(f[1]) in uids:
            out.append(line.strip())
    return out


def fd_count(host_pid):
    return len(os.listdir("/proc/%d/fd" % host_pid))


def user_cgroups(world):
    """Per-user cgroups the daemon has under the sandbox's cgroup (host view)."""
    if not world.cgroup:
        return []
    found = []
    for root, dirs, _ in os.walk(world.cgroup):
        found += [os.path.join(root, d) for d in dirs if d.startswith("user-")]
    return found


def check_login(rec, uid_of):
    """Problems with one login's record (empty: served)."""
    user, out = rec["user"], rec["out"]
    problems = []
    if rec["rc"] != 0:
        problems.append("exit %s" % rec["rc"])
    if "SERVICE-UP" not in out.split():
        problems.append("service not up when the command ran")
    if "RUNDIR=/run/user/%d" % uid_of[user] not in out.splitlines():
        problems.append("no runtime dir")
    try:
        listed = json.loads(out[out.index("["):])
    except ValueError:
        problems.append("no session list")
    else:
        if not any(s["pid"] == rec["pid"] and s["user"] == user for s in listed):
            problems.append("own session not listed")
    return ["%s: %s (%s)" % (user, p, out.strip()[-200:]) for p in problems]


def test_fifty_users_log_in_at_once_three_rounds(world):
    names = ["scale%02d" % i for i in range(1, N_USERS + 1)]
    uid_of = make_users(world, names)
    uids = set(uid_of.values())
    world.write_file(sb.TEST_DIR + "/scale-driver.py", DRIVER)
    d = world.start_daemon({"backend": "runit", "stop_delay": 0, "login_timeout": 60,
                            "stop_timeout": 10, "debug": False})
    # A request served: the daemon is in its event loop, with the --ready-fd
    # pipe closed (it is closed right after the ready line).
    assert world.users() == []
    fds_before = fd_count(d.host_pid)

    for rnd in range(1, ROUNDS + 1):
        t0 = time.monotonic()
        r = world.run([sb.PYTHON, sb.TEST_DIR + "/scale-driver.py", ",".join(names), LOGIN_CMD,
                       "120"], timeout=180, check=True)
        took = time.monotonic() - t0
        recs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        assert sorted(rec["user"] for rec in recs) == names
        problems = [p for rec in recs for p in check_login(rec, uid_of)]
        assert problems == [], "round %d:\n%s" % (rnd, "\n".join(problems))
        elapsed = sorted(rec["elapsed"] for rec in recs)
        print("round %d: %d logins in %.2f s; login time median %.2f s, max %.2f s"
              % (rnd, len(recs), took, elapsed[len(elapsed) // 2], elapsed[-1]))

        # Cleaned up (stop_delay 0): no sessions, no users, nothing left running.
        world.wait_for(lambda: world.sessions() == [], timeout=30, what="no sessions")
        world.wait_for(lambda: world.users() == [], timeout=60, what="no users")
        world.wait_for(lambda: procs_of(world, uids) == [], timeout=30,
                       what="no process of the users")
        left = world.run("ls /run/user 2>/dev/null || true").stdout.split()
        assert left == [], left
        assert user_cgroups(world) == []
        assert fd_count(d.host_pid) == fds_before

    assert d.running()
    assert d.stop(timeout=30) == 0
    reports = [l for l in d.log_lines() if SANITIZER_REPORT.search(l)]
    assert reports == [], "\n".join(reports[:40])
