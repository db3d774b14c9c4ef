# SPDX-License-Identifier: BSD-2-Clause
"""Issue 12, "managers inherit nothing of root's": the manager's log in the
runtime dir is capped (manager_log_size, one rotated file kept, by the
log-rotate helper running as the user), and the copy of a failed manager's
last lines into the daemon's log never repeats the lines of earlier attempts.

The managers are custom backends (docs/backends.md): small shell programs.
"""
import re

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

LOG = "dinit-userservd.log"

# Writes LINES numbered lines of about 100 bytes to its output (the log), then
# reports ready and runs until stopped.
FLOODER = """#!/bin/sh
i=0
pad=%s
while [ $i -lt %d ]; do
    i=$((i + 1))
    echo "line $i $pad"
done
echo "flood done"
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
"""

# Each start: two lines naming the attempt, then a failure before ready.
FAILER = """#!/bin/sh
n=$(cat "$HOME/attempts" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$HOME/attempts"
echo "attempt $n first line"
echo "attempt $n last line"
exit 3
"""


def backend(world, name, text):
    path = "%s/%s" % (sb.TEST_DIR, name)
    world.write_file(path, text, mode=0o755)
    return path


def size(world, path):
    r = world.run(["stat", "-c", "%s", path])
    return int(r.stdout) if r.returncode == 0 else None


def test_manager_log_is_capped_with_one_rotated_file(world):
    """3 MB of output against manager_log_size = 64K: the log holds at most
    64 KiB, its one rotated copy about as much, the newest lines are kept,
    and nothing else is left in the runtime dir. (On d815c19 the log grows
    to 3 MB.)"""
    cap = 64 * 1024
    lines = 30000
    prog = backend(world, "flooder", FLOODER % ("x" * 90, lines))
    d = world.start_daemon({"backend": prog, "manager_log_size": "64K", "login_timeout": 30,
                            "stop_delay": 0})
    uid = world.user("user1")["uid"]
    rundir = "/run/user/%d" % uid
    h = world.hold_su("user1")  # returns once ready: the flood is written by then
    log, old = rundir + "/" + LOG, rundir + "/" + LOG + ".1"

    def settled():
        s, s1 = size(world, log), size(world, old)
        # The rotated copy also takes what was written while it was made.
        return s is not None and s1 is not None and s <= cap and s1 <= cap * 5 // 4 and (s, s1)

    s, s1 = world.wait_for(settled, timeout=30, what="the log rotated down to the cap")
    text = world.read_file(old) + world.read_file(log)
    numbers = [int(m.group(1)) for m in re.finditer(r"^line (\d+) x+$", text, re.M)]
    # The newest lines are kept, in order. A line written in the instant of a
    # rotation (between its last copy and the truncation) may be lost.
    assert numbers == sorted(numbers) and numbers[-1] >= lines - 10, numbers[-5:]
    kept = numbers[-1] - numbers[0] + 1
    assert len(numbers) >= kept - 10 and len(numbers) * 102 >= cap * 0.9, (len(numbers), kept)
    print("log %d bytes, rotated %d bytes (cap %d); %d of the last %d lines kept"
          % (s, s1, cap, len(numbers), kept))
    # The rotated file is the user's, 0600, and the only other file.
    st = world.run(["stat", "-c", "%u %a %F", old], check=True).stdout.strip().split(None, 2)
    assert st == [str(uid), "600", "regular file"], st
    names = sorted(world.run(["ls", "-A", rundir], check=True).stdout.split())
    assert names == sorted([LOG, LOG + ".1"]), names
    assert h.end() == 0
    world.wait_for(lambda: not world.exists(rundir), timeout=15, what="the rundir removed")
    # The helper went with the manager.
    world.wait_for(lambda: world.run(["pgrep", "-u", "user1"]).returncode != 0, timeout=10,
                   what="no process of user1 left")
    assert d.running()


def test_manager_log_size_zero_means_no_cap(world):
    prog = backend(world, "flooder", FLOODER % ("x" * 90, 2000))
    world.start_daemon({"backend": prog, "manager_log_size": 0, "login_timeout": 30})
    uid = world.user("user1")["uid"]
    log = "/run/user/%d/%s" % (uid, LOG)
    h = world.hold_su("user1")
    world.wait_for(lambda: "flood done" in (world.read_file(log) if world.exists(log) else ""),
                   timeout=20, what="the flood written")
    assert size(world, log) > 2000 * 90
    assert not world.exists(log + ".1")
    assert world.run(["pgrep", "-u", "user1", "-f", "log-rotate"]).returncode != 0
    assert h.end() == 0


def test_failed_manager_lines_are_copied_once(world):
    """A manager that fails at every start (restart_limit 3): the daemon's log
    gets the lines of each attempt exactly once (each restart used to copy
    the lines of the earlier attempts again)."""
    prog = backend(world, "failer", FAILER)
    d = world.start_daemon({"backend": prog, "restart_limit": 3, "restart_window": 60,
                            "login_timeout": 20, "stop_delay": 0})
    h = world.hold_su("user1")
    d.wait_log(r"the manager of user1 .*3 failures within 60 s: giving up", timeout=20)
    copied = [line for line in d.log_lines() if "user1's manager wrote:" in line]
    attempts = [re.search(r"wrote: (attempt \d+ \w+ line)", line).group(1) for line in copied]
    want = ["attempt %d %s line" % (n, w) for n in (1, 2, 3) for w in ("first", "last")]
    assert attempts == want, copied
    assert h.end() == 0


# Writes a line, reports ready, and on SIGUSR1 writes another and fails.
FAIL_ON_USR1 = """#!/bin/sh
echo "written before the daemon restarted"
trap 'echo "written after the daemon restarted"; exit 3' USR1
echo ready > "$DINIT_USERSERVD_READY"
while :; do
    sleep 100000 &
    wait $!
done
"""


def test_adopted_manager_lines_are_not_copied_again(world):
    """After a daemon kill -9 and restart, the adopted manager's failure
    copies only what it wrote since the adoption: what the log held before
    may have been copied by the earlier daemon already."""
    prog = backend(world, "fail-on-usr1", FAIL_ON_USR1)
    cfg = {"backend": prog, "login_timeout": 20, "stop_delay": 0, "restart_limit": 1}
    d = world.start_daemon(cfg)
    h = world.hold_su("user1")
    pid = world.ctl_json("status", "user1")["manager_pid"]
    assert d.kill() == -9
    d2 = world.start_daemon(cfg)
    d2.wait_log(r"adopted the manager of user1: pid %d" % pid)
    world.run(["kill", "-USR1", str(pid)], check=True)
    d2.wait_log(r"the manager of user1 .*giving up", timeout=15)
    copied = [line for line in d2.log_lines() if "user1's manager wrote:" in line]
    assert [line.split("wrote: ", 1)[1] for line in copied] == \
        ["written after the daemon restarted"], copied
    assert h.end() == 0
