# SPDX-License-Identifier: BSD-2-Clause
"""Issue 4, item 1: when /etc/pam.d/dinit-userservd exists, each manager runs
inside a PAM session of that service (pam_limits, pam_env... apply to it, as
for systemd's user@); without the file, no PAM is involved; a stack that
refuses the user fails the start with a clear line in the daemon's log.

A custom backend (docs/backends.md) records its environment and its limits
to the user's home before it reports ready, so the login, which waits for
readiness, can read them.
"""
import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

BACKEND_PATH = sb.TEST_DIR + "/pam-backend"
BACKEND = """#!/bin/sh
{ env; echo "NOFILE=$(ulimit -n)"; } > "$HOME/.mgr.tmp" && mv -f "$HOME/.mgr.tmp" "$HOME/.mgr"
echo ready > "$DINIT_USERSERVD_READY"
exec sleep 100000
"""
MANAGER_PAM = "/etc/pam.d/dinit-userservd"
LIMITS = sb.TEST_DIR + "/limits.conf"
ENVFILE = sb.TEST_DIR + "/manager.env"


def manager_view(world, user="user1"):
    text = world.read_file(world.user(user)["home"] + "/.mgr")
    return dict(l.split("=", 1) for l in text.splitlines() if "=" in l)


def setup_backend(world):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, BACKEND, mode=0o755)
    return {"backend": BACKEND_PATH, "stop_delay": 0}


def test_manager_runs_in_its_own_pam_session(world):
    d = world.start_daemon(setup_backend(world))
    world.write_file(LIMITS, "user1 soft nofile 777\nuser1 hard nofile 777\n")
    world.write_file(ENVFILE, "DUS_FROM_PAM_ENV=manager-session\n")
    world.write_file(MANAGER_PAM,
                     "account  required pam_permit.so\n"
                     "session  required pam_limits.so conf=%s\n"
                     "session  required pam_env.so user_readenv=0 envfile=%s\n"
                     % (LIMITS, ENVFILE))
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    view = manager_view(world)
    assert view["NOFILE"] == "777", view
    assert view.get("DUS_FROM_PAM_ENV") == "manager-session", view
    # The daemon's own variables are still there, PAM only adds.
    assert view["USER"] == "user1" and view["HOME"] == world.user("user1")["home"]
    assert d.running()


def test_without_the_pam_file_no_pam_session(world):
    world.write_file(LIMITS, "user1 soft nofile 777\nuser1 hard nofile 777\n")
    assert not world.exists(MANAGER_PAM)
    world.start_daemon(setup_backend(world))
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    view = manager_view(world)
    assert view["NOFILE"] != "777", view
    assert "DUS_FROM_PAM_ENV" not in view


def test_a_refusing_pam_stack_fails_the_start_clearly(world):
    d = world.start_daemon(dict(setup_backend(world), login_timeout=10, restart_limit=1))
    world.write_file(MANAGER_PAM, "account required pam_deny.so\nsession required pam_permit.so\n")
    m = d.mark()
    r = world.su("user1", "echo in", timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "in", r.stderr
    assert r.elapsed < 5, "the login waited %.1f s for a manager that cannot start" % r.elapsed
    d.wait_log(r"PAM session dinit-userservd for user1: ", start=m, timeout=5)
    assert not world.exists(world.user("user1")["home"] + "/.mgr")
