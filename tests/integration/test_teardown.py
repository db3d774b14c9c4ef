# SPDX-License-Identifier: BSD-2-Clause
"""Issues 12, 14 and 18: what is left of a user after their manager is gone,
and what it costs everyone else.

* issue 12.1: a user's 3,000-process chain under a killed manager, killed by
  process tree (one /proc scan, a pidfd per process) or by cgroup, while
  another user's `su -l` completes in under a second;
* issue 18: the user's cgroup directory is removed once empty, after a
  logout and after `stop-user`;
* issue 12.5: a runtime directory of 500,000 entries is removed without
  holding up another user's login, and before the same user's next manager
  uses the path;
* issue 14.2: `tasks_max` and `memory_max` reach the user's cgroup, or one
  log line says why not.

Each test runs in cgroup mode (the default: the harness gives each sandbox a
cgroup2 subtree of its own) and in process-tree mode (use_cgroups = no).
"""
import os
import re
import time

import pytest

import sandbox as sb
from backend_fixtures import describe, procs, user_procs

pytestmark = pytest.mark.needs_build

MODES = pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "process-tree"])

CHAIN = sb.TEST_DIR + "/chain"
CHAIN_BACKEND = sb.TEST_DIR + "/chain-backend"
CHAIN_LEN = 3000

# chain N: a process whose child runs chain N-1 (and waits for it), down to
# one that marks the chain complete and sleeps: N+1 processes in a line.
CHAIN_SCRIPT = """#!/bin/sh
if [ "$1" -gt 0 ]; then
    /bin/sh %(chain)s $(($1 - 1))
else
    : > "$HOME/chain-done"
    exec sleep 100001
fi
""" % {"chain": CHAIN}

# A custom backend (docs/backends.md): ready at once; the first manager
# started while ~/build-chain exists builds the chain beside itself.
BACKEND = """#!/bin/sh
echo ready > "$DINIT_USERSERVD_READY"
if [ -e "$HOME/build-chain" ]; then
    rm -f "$HOME/build-chain"
    /bin/sh %(chain)s %(n)d </dev/null >/dev/null 2>&1 &
fi
while :; do
    sleep 100000 &
    wait $!
done
""" % {"chain": CHAIN, "n": CHAIN_LEN}


def install_backend(w):
    w.makedirs(sb.TEST_DIR)
    w.write_file(CHAIN, CHAIN_SCRIPT, mode=0o755)
    w.write_file(CHAIN_BACKEND, BACKEND, mode=0o755)
    return CHAIN_BACKEND


def start(w, cgroups, **config):
    config.setdefault("backend", install_backend(w))
    config["use_cgroups"] = cgroups
    d = w.start_daemon(config)
    d.wait_log(r"listening on", timeout=2)
    in_cgroups = any("managers run in cgroups below" in l for l in d.log_lines())
    if cgroups and not in_cgroups:
        pytest.skip("no writable cgroup2 hierarchy here: only the process tree")
    assert in_cgroups == cgroups, d.log()
    return d


def chain_procs(ps):
    return [p for p in ps
            if CHAIN in (p.get("argv") or []) or (p.get("argv") or [])[1:2] == ["100001"]]


@MODES
def test_chain_under_a_killed_manager(world, cgroups):
    """user1's manager leaves a chain of 3,000 processes (each the child of
    the last) and is killed with SIGKILL: user2's cold `su -l` right then
    completes within 1 s, and every process of the chain is gone (they were
    killed: the daemon says so), while the restarted manager runs."""
    w = world
    uid = w.user("user1")["uid"]
    d = start(w, cgroups, stop_delay=30)
    w.write_file("/home/user1/build-chain", "", owner="user1")
    h = w.hold_su("user1")
    w.wait_for(lambda: w.exists("/home/user1/chain-done"), timeout=120, interval=0.2,
               what="the chain of %d processes built" % CHAIN_LEN)
    chain = chain_procs(user_procs(w, uid))
    assert len(chain) >= CHAIN_LEN, len(chain)
    mpid = w.ctl_json("status", "user1")["manager_pid"]
    m = d.mark()
    w.run(["kill", "-KILL", str(mpid)], check=True)
    r = w.su("user2", "echo in")
    assert r.returncode == 0 and r.stdout.strip() == "in", r.stderr
    assert r.elapsed < 1.0, "user2's su -l took %.2f s while user1's chain was killed" % r.elapsed
    line = d.wait_log(r"killed (\d+) leftover process(es)? of user1's manager", start=m,
                      timeout=30)
    # (by process tree, fewer than the chain's length are signalled: a
    # shell whose child was killed may exit on its own first)
    killed = int(re.search(r"killed (\d+)", line).group(1))
    assert killed > 0, line
    left = []

    def gone():
        left[:] = chain_procs(user_procs(w, uid))
        return not left

    try:
        w.wait_for(gone, timeout=30, interval=0.1, what="the chain gone")
    except sb.CommandTimeout:
        raise AssertionError("%d processes of the chain left:\n%s" % (len(left), describe(left[:20])))
    d.wait_log(r"started the manager of user1", start=m, timeout=5)
    print("user2's su -l: %.3f s; %d killed; %s" % (
        r.elapsed, killed, [l for l in d.log_lines()[m:] if "scans" in l]))
    assert h.end() == 0
