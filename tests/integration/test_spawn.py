# SPDX-License-Identifier: BSD-2-Clause
"""How the daemon creates a manager: it inherits nothing of root's (issue 12:
the session keyring, the daemon's raised limits) and is created straight into
the user's cgroup (issue 14: clone3 CLONE_INTO_CGROUP).

A custom backend records what the manager sees to the user's home before it
reports ready, so the login, which waits for readiness, can read it.
"""
import os

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

BACKEND_PATH = sb.TEST_DIR + "/spawn-backend"
KEYID = sb.TEST_DIR + "/keyid"
BACKEND = """#!/bin/sh
{ echo "NOFILE=$(ulimit -n)"; echo "CGROUP=$(cat /proc/self/cgroup | grep ^0::)"
  echo "KEY=$(keyctl print "$(cat %s 2>/dev/null)" 2>&1)"; } > "$HOME/.mgr.tmp"
mv -f "$HOME/.mgr.tmp" "$HOME/.mgr"
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
""" % KEYID
MANAGER_PAM = "/etc/pam.d/dinit-userservd"


def manager_view(world, user="user1"):
    text = world.read_file(world.user(user)["home"] + "/.mgr")
    return dict(l.split("=", 1) for l in text.splitlines() if "=" in l)


def prepare(world, pam=False, **config):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, BACKEND, mode=0o755)
    if pam:
        world.write_file(MANAGER_PAM, "account required pam_permit.so\n"
                         "session optional pam_permit.so\n")
    return dict({"backend": BACKEND_PATH, "stop_delay": 0}, **config)


@pytest.mark.parametrize("pam", [False, True], ids=["no-pam", "keeper"])
def test_root_session_keyring_does_not_reach_the_manager(world, pam):
    # The daemon is started from a root shell's session keyring holding a key
    # (pam_keyinit in root's login, a KEYRING Kerberos cache...).
    wrap = ["keyctl", "session", "-", "sh", "-c",
            'keyctl add user dus-root-secret s3cret @s > %s && exec "$@"' % KEYID, "sh"]
    d = world.start_daemon(prepare(world, pam), wrap=wrap)
    assert world.read_file(KEYID).strip().isdigit()
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    view = manager_view(world)
    assert "s3cret" not in view["KEY"], view
    assert d.running()


def test_manager_gets_the_limits_the_daemon_started_with(world):
    # A service's soft limit of 1024 and a hard one of 20000: the daemon
    # raises its own soft limit to 20000, the managers must not inherit it.
    d = world.start_daemon(prepare(world), nofile=(1024, 20000))
    daemon_limit = world.run(["prlimit", "--nofile", "-o", "SOFT", "--noheadings", "-p",
                              str(d.pid)], check=True).stdout.strip()
    assert daemon_limit == "20000"
    assert world.su("user1", "true").returncode == 0
    assert manager_view(world)["NOFILE"] == "1024"
    # The same after a reexec (the new image must learn the original limit).
    m = d.mark()
    assert d.ctl("reexec").returncode == 0
    d.wait_log(r"re-executed, listening", start=m)
    assert world.run(["prlimit", "--nofile", "-o", "SOFT", "--noheadings", "-p",
                      str(d.pid)], check=True).stdout.strip() == "20000"
    world.run(["rm", "-f", world.user("user1")["home"] + "/.mgr"], check=True)
    assert world.su("user1", "true").returncode == 0
    assert manager_view(world)["NOFILE"] == "1024"


@pytest.mark.parametrize("group", ["new", "left-over"])
@pytest.mark.parametrize("pam", [False, True], ids=["no-pam", "keeper"])
def test_managers_are_created_in_their_cgroup(world, pam, group):
    # A group left over (a crashed manager's, still draining) is joined
    # through cgroup.procs: a new one only is cloned into (spawn.c, fork_into).
    d = world.start_daemon(prepare(world, pam))
    if "managers run in cgroups below" not in d.log():
        pytest.skip("no writable cgroup2 hierarchy here")
    d.wait_log(r"managers are created straight into their cgroup \(clone3 CLONE_INTO_CGROUP\)")
    uid = world.user("user1")["uid"]
    mine = "/dinit-userservd/user-%d" % uid
    if group == "left-over":
        os.mkdir(os.path.join(world.cgroup, "dinit-userservd", "user-%d" % uid))
    h = world.hold_su("user1")
    assert manager_view(world)["CGROUP"].endswith(mine)
    if pam:  # the keeper stays outside: killing the user's group spares it
        keeper = world.ctl_json("status", "user1")["manager_pid"]
        line = world.run(["grep", "^0::", "/proc/%d/cgroup" % keeper], check=True).stdout
        assert line.strip() and not line.strip().endswith(mine), line
    assert h.end() == 0


def test_tree_mode_says_nothing_of_clone3(world):
    d = world.start_daemon(prepare(world, use_cgroups="no"))
    assert world.su("user1", "true").returncode == 0
    assert "managers are created" not in d.log()
    assert "CLONE_INTO_CGROUP" not in d.log()


def test_root_manager_stop_spares_the_keepers(world):
    # Process tree and root_session: what root's manager left is found by
    # uid 0 below the daemon, where every user's keeper also runs as root.
    # Ending root's manager must not end user1's keeper (and so its manager).
    d = world.start_daemon(prepare(world, pam=True, root_session=True, use_cgroups=False))
    h = world.hold_su("user1")
    keeper = world.ctl_json("status", "user1")["manager_pid"]
    assert world.pamtester("dus-test", "root").returncode == 0
    d.wait_log(r"the manager of root stopped")
    assert world.run(["kill", "-0", str(keeper)]).returncode == 0, d.log()
    assert world.ctl_json("status", "user1")["manager_pid"] == keeper
    assert world.ctl_json("status", "user1")["state"] == "ready"
    assert h.end() == 0
