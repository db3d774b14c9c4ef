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


# ---- issue 12: the keeper opens and closes the managers' PAM session -------

EVENTS = sb.TEST_DIR + "/events"
RECORD = sb.TEST_DIR + "/record-pam"
# pam_exec, as root, in the keeper: which call, and how many processes of the
# user exist at that moment (the close must come after all of them are gone).
RECORD_SCRIPT = """#!/bin/sh
n=$(ps -o pid= -u "$PAM_USER" | wc -l)
echo "$PAM_TYPE $PAM_SERVICE user_procs=$n" >> %s
""" % EVENTS
# The manager records its start and its stop, leaves a child behind (which the
# keeper must end before the close), and ignores SIGTERM when asked to.
EVENT_BACKEND = """#!/bin/sh
echo "manager-start $$" >> %s
if [ -e %s/ignore-term ]; then trap '' TERM; else
trap 'echo "manager-stop $$" >> %s; exit 0' TERM; fi
{ env; echo "NOFILE=$(ulimit -n)"; echo "GROUPS=$(id -G)"; } > "$HOME/.mgr.tmp"
mv -f "$HOME/.mgr.tmp" "$HOME/.mgr"
sleep 100000 &
echo ready > "$DINIT_USERSERVD_READY"
while :; do wait; done
""" % (EVENTS, sb.TEST_DIR, EVENTS)
RECORDING_PAM = ("account  required pam_permit.so\n"
                 "session  optional pam_exec.so " + RECORD + "\n")


def setup_keeper(world, pam=RECORDING_PAM, **config):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, EVENT_BACKEND, mode=0o755)
    world.write_file(RECORD, RECORD_SCRIPT, mode=0o755)
    world.write_file(EVENTS, "", mode=0o666)
    world.run(["chmod", "0666", EVENTS], check=True)
    world.write_file(MANAGER_PAM, pam)
    return dict({"backend": BACKEND_PATH, "stop_delay": 0}, **config)


def events(world):
    return [l.split()[0] + ("" if "user_procs" not in l else " " + l.split()[-1])
            for l in world.read_file(EVENTS).splitlines()]


def wait_closed(world, timeout=10):
    world.wait_for(lambda: any(e.startswith("close_session") for e in events(world)),
                   timeout=timeout, what="close_session recorded")
    return events(world)


CYCLE = ["open_session user_procs=0", "manager-start", "manager-stop",
         "close_session user_procs=0"]


# Cgroup mode (the harness gives each sandbox a cgroup2 subtree when the host
# has one) and tree mode.
MODES = pytest.mark.parametrize("use_cgroups", ["yes", "no"], ids=["cgroup", "tree"])


@MODES
def test_keeper_closes_the_session_after_the_manager(world, use_cgroups):
    d = world.start_daemon(setup_keeper(world, use_cgroups=use_cgroups))
    world.run(["usermod", "-aG", "audio,video", "user1"], check=True)
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    assert wait_closed(world) == CYCLE
    # The keeper looked the groups up for the manager (getgrouplist).
    want = world.run(["id", "-G", "user1"], check=True).stdout.split()
    assert sorted(manager_view(world)["GROUPS"].split()) == sorted(want), want
    assert len(want) == 3
    d.wait_log(r"the manager of user1 stopped \(exited with status 0\)")
    assert not [l for l in d.log_lines() if "PAM session dinit-userservd" in l], d.log()


@MODES
def test_keeper_is_killed_last_after_stop_timeout(world, use_cgroups):
    d = world.start_daemon(setup_keeper(world, stop_timeout=1, use_cgroups=use_cgroups))
    world.write_file(sb.TEST_DIR + "/ignore-term", "")
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    # The manager ignores SIGTERM: killed after stop_timeout, and only then,
    # with nothing of the user left, the session is closed.
    assert wait_closed(world, timeout=15) == ["open_session user_procs=0", "manager-start",
                                              "close_session user_procs=0"]
    d.wait_log(r"the manager of user1 stopped \(killed by signal 9")


@MODES
@pytest.mark.parametrize("how", ["kill9", "reexec"])
def test_adopted_keeper_still_closes(world, how, use_cgroups):
    config = setup_keeper(world, use_cgroups=use_cgroups)
    d = world.start_daemon(config)
    h = world.hold_su("user1")
    assert events(world) == CYCLE[:2]
    keeper = world.ctl_json("status", "user1")["manager_pid"]
    if how == "kill9":
        d.kill()
        d = world.start_daemon(config)
        d.wait_log(r"adopted the manager of user1: pid %d \(its PAM session's keeper\) "
                   r"\(watched by pidfd\)" % keeper)
    else:
        m = d.mark()
        assert d.ctl("reexec").returncode == 0
        d.wait_log(r"adopted the manager of user1: pid %d \(its PAM session's keeper\)$"
                   % keeper, start=m)
    assert world.ctl_json("status", "user1")["manager_pid"] == keeper
    assert h.end() == 0
    assert wait_closed(world) == CYCLE
    uid = world.user("user1")["uid"]
    world.wait_for(lambda: world.run(["kill", "-0", str(keeper)]).returncode != 0,
                   what="keeper gone")
    assert world.run(["pgrep", "-u", str(uid)]).returncode == 1


# ---- issue 20: nothing of the daemon's in a keeper or a manager ----------

GATE = sb.TEST_DIR + "/gate"


def fd_targets(world, pid):
    r = world.run(["sh", "-c", 'cd /proc/%d/fd && for f in *; do echo "$f $(readlink $f)"; '
                   'done' % pid], check=True)
    return dict(l.split(" ", 1) for l in r.stdout.splitlines())


@MODES
def test_keeper_and_manager_hold_nothing_of_the_daemon(world, use_cgroups):
    # The managers' PAM session stops in pam_exec until the gate is opened:
    # the keeper is then exactly where it was when PAM started (anything slow
    # runs after the fds were dropped).
    world.makedirs(sb.TEST_DIR)
    world.run(["mkfifo", GATE], check=True)
    world.write_file(sb.TEST_DIR + "/block", '#!/bin/sh\n[ "$PAM_TYPE" = open_session ] && '
                     'cat %s\nexit 0\n' % GATE, mode=0o755)
    d = world.start_daemon(setup_keeper(world, pam=RECORDING_PAM + "session optional "
                                        "pam_exec.so " + sb.TEST_DIR + "/block\n",
                                        use_cgroups=use_cgroups))
    daemon_fds = fd_targets(world, d.pid)
    theirs = {t for f, t in daemon_fds.items() if f not in ("0", "1", "2")} - {"/dev/null"}
    assert any("lock" in t for t in theirs) and any("socket:" in t for t in theirs), daemon_fds
    world.run(["mkfifo", "-m", "0666", GATE + "2"], check=True)
    login = world.popen(["su", "-l", "user1", "-c", "read x < " + GATE + "2"],
                        stdin=sb.subprocess.DEVNULL,
                        stdout=sb.subprocess.PIPE, stderr=sb.subprocess.STDOUT)
    try:
        kids = lambda: world.run(["pgrep", "-P", str(d.pid)]).stdout.split()
        world.wait_for(lambda: len(kids()) == 1 and
                       world.run(["pgrep", "-f", "cat " + GATE]).returncode == 0,
                       what="the keeper in its PAM session")
        keeper = int(kids()[0])
        fds = fd_targets(world, keeper)
        # 3: the user's cgroup, to create the manager in (cgroup mode).
        assert set(fds) <= {"0", "1", "2", "3"}, fds
        assert fds.get("3", "/user-%d" % world.user("user1")["uid"]).endswith(
            "/user-%d" % world.user("user1")["uid"]), fds
        assert not set(fds.values()) & theirs, fds
        assert fds["0"] == fds["1"] == "/dev/null", fds
        assert fds.get("2") in (None, daemon_fds.get("2")), fds
        world.run(["sh", "-c", "echo go > " + GATE], check=True)
        world.wait_for(lambda: world.exists(world.user("user1")["home"] + "/.mgr"),
                       what="the manager's start")
        check_manager_fds(world, keeper, theirs)
        world.run(["sh", "-c", "echo go > " + GATE + "2"], check=True)
        out, _ = login.communicate(timeout=20)
        assert login.returncode == 0, out
    finally:
        if login.poll() is None:
            login.kill()
    assert wait_closed(world) == CYCLE


def check_manager_fds(world, keeper, theirs):
    fds = fd_targets(world, keeper)
    assert set(fds) <= {"0", "1", "2"} and not set(fds.values()) & theirs, fds
    children = world.run(["pgrep", "-P", str(keeper)], check=True).stdout.split()
    assert len(children) == 1, children
    manager = int(children[0])
    # (the shell running the backend reads its script on an fd of its own)
    fds = {f: t for f, t in fd_targets(world, manager).items() if t != BACKEND_PATH}
    assert set(fds) == {"0", "1", "2"} and not set(fds.values()) & theirs, fds
    assert fds["0"] == "/dev/null" and fds["1"] == fds["2"] and \
        fds["1"].endswith("/dinit-userservd.log"), fds


# ---- issue 19: the module in the managers' own PAM stack ----------------

@MODES
def test_the_module_in_the_managers_stack_does_nothing(world, use_cgroups):
    d = world.start_daemon(setup_keeper(world, pam=RECORDING_PAM + "session optional %s "
                                        "socket=%s\n" % (sb.PAM_MODULE, sb.DEFAULT_SOCKET),
                                        use_cgroups=use_cgroups))
    uid = world.user("user1")["uid"]
    t0 = sb.time.monotonic()
    h = world.hold_su("user1")
    assert sb.time.monotonic() - t0 < 1, "the first login waited for the manager's own session"
    sessions = world.sessions()
    assert len(sessions) == 1, sessions
    assert h.end() == 0
    assert wait_closed(world) == CYCLE
    world.wait_for(lambda: world.run(["pgrep", "-u", str(uid)]).returncode == 1,
                   what="no process of user1")
    world.wait_for(lambda: not world.users(), what="user1 forgotten")
    assert not [l for l in d.log_lines() if "refused" in l], d.log()


def test_credentials_that_cannot_be_established_do_not_stop_the_manager(world):
    # As with systemd's user@: pam_setcred failing (here pam_deny in auth) is
    # logged and ignored; the session itself opens and closes.
    d = world.start_daemon(setup_keeper(world, pam="auth required pam_deny.so\n" + RECORDING_PAM))
    r = world.su("user1", "true")
    assert r.returncode == 0, r.stderr
    assert wait_closed(world) == CYCLE
    d.wait_log(r"PAM session dinit-userservd for user1: setcred \(ignored\): ")
    assert not [l for l in d.log_lines() if "setcred delete" in l], d.log()


OWN_OPEN = sb.TEST_DIR + "/own-open.json"
SELF_OPENING_BACKEND = """#!/usr/bin/python3
import json, os, sys, time
sys.path.insert(0, %r)
import dusproto
out = dusproto.cmd_open(%r, "root")
with open(%r + ".tmp", "w") as f:
    json.dump(out, f)
os.rename(%r + ".tmp", %r)
with open(os.environ["DINIT_USERSERVD_READY"], "w") as f:
    f.write("ready\\n")
time.sleep(100000)
""" % (sb.HERE, sb.DEFAULT_SOCKET, OWN_OPEN, OWN_OPEN, OWN_OPEN)


def test_daemon_refuses_a_session_opened_by_its_own_manager(world):
    # Root's manager (root_session = yes, no PAM file: the manager is the
    # daemon's child) is root, so only its pid tells its OPEN_SESSION from a
    # login's: the daemon refuses it at once instead of making the manager
    # wait for itself. (Keepers are found the same way: supervisor_owns.)
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, SELF_OPENING_BACKEND, mode=0o755)
    d = world.start_daemon({"backend": BACKEND_PATH, "root_session": "yes"})
    assert d.ctl("enable-linger", "root").returncode == 0
    world.wait_for(lambda: world.exists(OWN_OPEN), timeout=20, what="the manager's OPEN")
    out = sb.json.loads(world.read_file(OWN_OPEN))
    assert out["replies"][0]["type"] == "RESULT", out
    assert "own PAM session" in out["replies"][0]["message"], out
    assert out["sessions_while_open"] == [], out
    d.wait_log(r"a manager or its PAM session, tried to open a session for 'root': refused")


@MODES
def test_keeper_with_a_readiness_waiter(world, use_cgroups):
    # runit: readiness comes from a waiter the daemon starts beside the
    # keeper's manager (created in the user's cgroup too).
    import test_restart
    test_restart.add_runit_user(world, "user1")
    d = world.start_daemon(setup_keeper(world, backend="runit", stop_timeout=5,
                                        use_cgroups=use_cgroups))
    h = world.hold_su("user1")
    keeper = world.ctl_json("status", "user1")["manager_pid"]
    assert world.run(["cat", "/proc/%d/comm" % keeper], check=True).stdout.strip() == "(dus-pam)"
    assert h.end() == 0
    # (at the open, the waiter may run already: it starts beside the keeper)
    ev = wait_closed(world)
    assert [e.split()[0] for e in ev] == ["open_session", "close_session"], ev
    assert ev[1] == "close_session user_procs=0", ev
    d.wait_log(r"the manager of user1 stopped")
    uid = world.user("user1")["uid"]
    world.wait_for(lambda: world.run(["pgrep", "-u", str(uid)]).returncode == 1,
                   what="no process of user1")


# ---- issue 14, item 3: the daemon holds the stack, keepers inherit it -----

ENVFILE2 = sb.TEST_DIR + "/manager2.env"
INCLUDED = "/etc/pam.d/dus-test-included"


def pam_env_lines(envfile):
    return "session  required pam_env.so user_readenv=0 envfile=%s\n" % envfile


def daemon_maps(world, d):
    return world.read_file("/proc/%d/maps" % d.pid)


def cold_login(world, d, user="user1"):
    """A first login of user (its manager stopped before): what the manager saw."""
    m = d.mark()
    r = world.su(user, "true")
    assert r.returncode == 0, r.stderr
    view = manager_view(world, user)
    d.wait_log(r"the manager of %s stopped" % user, start=m)
    return view, d.log_lines()[m:]


@pytest.mark.parametrize("how", ["file-edited", "included-renamed", "included-edited-reload"])
def test_a_changed_pam_stack_applies_at_the_next_start(world, how):
    # The daemon loads the stack once (the keepers inherit it) and loads it
    # again when the service file or /etc/pam.d changed since: an edit of the
    # file, an included file replaced by rename (pam-auth-update's way). An
    # included file edited in place changes neither: `reload` reads it again.
    world.makedirs(sb.TEST_DIR)
    world.write_file(ENVFILE, "DUS_FROM_PAM_ENV=one\n")
    world.write_file(ENVFILE2, "DUS_FROM_PAM_ENV=two\n")
    if how == "file-edited":
        world.write_file(MANAGER_PAM, "account  required pam_permit.so\n" + pam_env_lines(ENVFILE))
    else:
        world.write_file(MANAGER_PAM, "account  required pam_permit.so\n"
                         "@include dus-test-included\n")
        world.write_file(INCLUDED, pam_env_lines(ENVFILE))
    d = world.start_daemon(setup_backend(world))
    d.wait_log(r"loaded the managers' PAM service dinit-userservd")
    # Loaded by the daemon itself, holding no fd of it.
    assert "/pam_env.so" in daemon_maps(world, d)
    fds = fd_targets(world, d.pid).values()
    assert not [t for t in fds if "pam" in t], fds
    view, _ = cold_login(world, d)
    assert view.get("DUS_FROM_PAM_ENV") == "one", view
    m = d.mark()
    if how == "file-edited":
        world.write_file(MANAGER_PAM, "account  required pam_permit.so\n" + pam_env_lines(ENVFILE2))
    elif how == "included-renamed":
        world.write_file(INCLUDED + ".new", pam_env_lines(ENVFILE2))
        world.run(["mv", "-f", INCLUDED + ".new", INCLUDED], check=True)
    else:
        world.write_file(INCLUDED, pam_env_lines(ENVFILE2))
        assert d.ctl("reload").returncode == 0
    view, _ = cold_login(world, d)
    assert view.get("DUS_FROM_PAM_ENV") == "two", view
    lines = d.log_lines()[m:]
    assert [l for l in lines if "loaded the managers' PAM service" in l], lines
    assert [l for l in lines if "(its PAM session's keeper)" in l], lines
    assert d.running()


def test_a_pam_file_removed_after_the_daemon_started(world):
    world.makedirs(sb.TEST_DIR)
    world.write_file(ENVFILE, "DUS_FROM_PAM_ENV=manager-session\n")
    world.write_file(MANAGER_PAM, "account  required pam_permit.so\n" + pam_env_lines(ENVFILE))
    d = world.start_daemon(setup_backend(world))
    d.wait_log(r"loaded the managers' PAM service dinit-userservd")
    assert "/pam_env.so" in daemon_maps(world, d)
    world.run(["rm", MANAGER_PAM], check=True)
    view, lines = cold_login(world, d)
    # No PAM session and no keeper, as for a daemon started without the file;
    # the stack the daemon held is gone with it.
    assert "DUS_FROM_PAM_ENV" not in view, view
    started = [l for l in lines if "started the manager of user1" in l]
    assert started and "keeper" not in started[0], lines
    assert "/pam_env.so" not in daemon_maps(world, d)
    # And back: the next start loads it again.
    world.write_file(MANAGER_PAM, "account  required pam_permit.so\n" + pam_env_lines(ENVFILE))
    view, lines = cold_login(world, d)
    assert view.get("DUS_FROM_PAM_ENV") == "manager-session", view
