# SPDX-License-Identifier: BSD-2-Clause
"""With `syslog = yes` the daemon holds a connected /dev/log socket, and
glibc remembers its fd number. Its children close that fd with the rest of
the daemon's: a child must forget the connection too, or the first syslog
call there (pam_syslog of a module in the keeper) sends to whatever file
now has that number, fails (ENOTSOCK), and glibc closes that file (then
reconnects, usually at that same number).

Seen without the fix (the daemon's socket is its fd 3): in process-tree
mode pam_limits' limits.conf got fd 3 in the keeper; its bad line's
pam_syslog closed it, and pam_limits' next read(3) blocked on the new
socket: the keeper hung in pam_open_session, no manager. In cgroup mode fd
3 was the user's cgroup dir (child_drop_fds): closed the same way, and the
manager's clone3 into it failed with EBADF.

The shipped managers' PAM file, its pam_limits reading the default
/etc/security/limits.conf: a bad line first (pam_limits logs it while it
reads the file), the user's nofile limit after it. The manager (the
keeper's child) must get that limit. A syslog listener on /dev/log (in a
sandbox with /dev overlaid: test_login_wait's lworld) exists before the
daemon starts, so that its openlog connects.
"""
import os

import pytest

import sandbox as sb
from test_login_wait import lworld, start_syslog  # noqa: F401 (fixture)

pytestmark = pytest.mark.needs_build

BACKEND_PATH = sb.TEST_DIR + "/syslog-backend"
BACKEND = """#!/bin/sh
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
"""
MANAGER_PAM = "/etc/pam.d/dinit-userservd"
SHIPPED_PAM = os.path.join(sb.REPO, "data/pam.d/dinit-userservd")
LIMITS = "/etc/security/limits.conf"

MODES = pytest.mark.parametrize("use_cgroups", ["yes", "no"], ids=["cgroup", "tree"])


def soft_nofile(world, pid):
    for line in world.read_file("/proc/%d/limits" % pid).splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    raise AssertionError("no 'Max open files' in /proc/%d/limits" % pid)


@MODES
def test_keeper_pam_modules_keep_their_files(lworld, use_cgroups):  # noqa: F811
    w = lworld
    w.makedirs(sb.TEST_DIR)
    w.write_file(BACKEND_PATH, BACKEND, mode=0o755)
    with open(SHIPPED_PAM) as f:
        w.write_file(MANAGER_PAM, f.read())
    w.write_file(LIMITS, "user1 this-is-not-a-limit\n"
                 "user1 soft nofile 777\n")
    syslog = start_syslog(w)
    d = w.start_daemon({"backend": BACKEND_PATH, "syslog": "yes", "stop_delay": 0,
                        "login_timeout": 10, "use_cgroups": use_cgroups})
    # The daemon's own line reaches the listener: its openlog connected.
    syslog.read_until(lambda l: "dinit-userservd" in l, 5, "a line of the daemon's")
    h = w.hold_su("user1", timeout=30)
    st = w.ctl_json("status", "user1")
    assert st["state"] == "ready", (st, d.log())
    keeper = st["manager_pid"]
    kids = w.run(["pgrep", "-P", str(keeper)], check=True).stdout.split()
    assert len(kids) == 1, kids
    # pam_limits logged the bad line (the keeper's syslog works) ...
    syslog.read_until(lambda l: "this-is-not-a-limit" in l, 5, "pam_limits' line")
    # ... and went on reading: the limit after it is the manager's.
    assert soft_nofile(w, int(kids[0])) == "777"
    assert h.end() == 0
    assert d.stop() == 0
