# SPDX-License-Identifier: BSD-2-Clause
"""Issue 5 acceptance: XDG_RUNTIME_DIR created, exported and removed by the
daemon, safely, with real logins (su -l, runuser -l, pamtester).

Most tests run the `none` backend (the daemon only tracks sessions and the
runtime directory). Where the manager's own environment matters, a custom
backend (a small shell program, see CUSTOM_BACKEND) writes its environment
to ~/.manager-env before it reports ready, so that the login, which waits for
readiness, can already read it.
"""
import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

BACKEND_PATH = sb.TEST_DIR + "/env-backend"
STOP_GATE = sb.TEST_DIR + "/stop-gate"

# A custom backend (docs/backends.md): record the environment, report ready,
# run until SIGTERM. When the FIFO STOP_GATE exists, a SIGTERM first marks
# ~/.manager-stopping and then waits for a line on the FIFO before exiting:
# the test decides when the manager has stopped.
CUSTOM_BACKEND = """#!/bin/sh
env > "$HOME/.manager-env.tmp" && mv -f "$HOME/.manager-env.tmp" "$HOME/.manager-env"
on_term() {
    if [ -p %(gate)s ]; then
        : > "$HOME/.manager-stopping"
        read -r _ < %(gate)s
    fi
    exit 0
}
trap on_term TERM
echo ready > "$DINIT_USERSERVD_READY"
while :; do
    sleep 100000 &
    wait $!
done
""" % {"gate": STOP_GATE}

# What `stat` tells about a path (never following a symlink), and what the
# login's environment says; printed by the logins below.
STAT_FMT = "%F|%U|%G|%a"
ENV_CMD = 'printf "XDG=%s\\n" "${XDG_RUNTIME_DIR-unset}"'


def uid_of(world, user="user1"):
    return world.user(user)["uid"]


def stat(world, path):
    """'type|owner|group|mode' of path itself (lstat), or None if absent."""
    r = world.run(["stat", "-c", STAT_FMT, "--", path])
    return r.stdout.strip() if r.returncode == 0 else None


def snapshot(world, path):
    """Everything below path (not following symlinks): one line per entry
    with its type, owner, mode, size, link target, and a checksum of the
    regular files."""
    script = ('cd "$1" && find . -printf "%y %u %m %s %p -> %l\\n" | LC_ALL=C sort; '
              'find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha1sum')
    r = world.run(["sh", "-c", script, "sh", path], timeout=60, check=True)
    return r.stdout


def install_custom_backend(world):
    world.makedirs(sb.TEST_DIR)
    world.write_file(BACKEND_PATH, CUSTOM_BACKEND, mode=0o755)
    return BACKEND_PATH


def manager_env(world, user="user1"):
    """The environment the user's manager (the custom backend) started with."""
    home = world.user(user)["home"]
    text = world.read_file(home + "/.manager-env")
    return dict(l.split("=", 1) for l in text.splitlines() if "=" in l)


def login_env(world, user="user1", login="su"):
    """One-shot login; returns (CompletedProcess, XDG_RUNTIME_DIR or 'unset')."""
    r = getattr(world, login)(user, ENV_CMD)
    assert r.returncode == 0, r.stderr
    xdg = [l[4:] for l in r.stdout.splitlines() if l.startswith("XDG=")]
    assert len(xdg) == 1, r.stdout
    return r, xdg[0]


def wait_user_gone(world, user="user1", timeout=10):
    world.wait_for(lambda: all(u["name"] != user for u in world.users()), timeout=timeout,
                   what="%s no longer known to the daemon" % user)


def wait_gone(world, path, timeout=10):
    world.wait_for(lambda: not world.exists(path), timeout=timeout, what="%s removed" % path)


def stack_with(world, before_module=(), control="optional", module_args=(), socket=sb.DEFAULT_SOCKET):
    """pam_stack() with lines inserted just before the module, and the
    module's control flag replaced."""
    lines = world.pam_stack(module_args=list(module_args), socket=socket)
    i = next(i for i, l in enumerate(lines) if sb.PAM_MODULE in l)
    lines[i] = lines[i].replace("optional", control, 1)
    return lines[:i] + list(before_module) + lines[i:]


def mkdir_owned(world, path, mode, owner):
    """mkdir by root, then handed to owner (its parent need not be theirs)."""
    world.makedirs(path, mode)
    world.run(["chown", "%s:%s" % (owner, owner), path], check=True)


def wire_all(world, lines):
    for s in sb.LOGIN_SERVICES:
        world.write_pam_service(s, lines)


# ---- the directory the daemon manages ----------------------------------------

@pytest.mark.parametrize("login", ["su", "runuser", "pamlogin"])
def test_login_gets_rundir(world, daemon, login):
    """With only our module: XDG_RUNTIME_DIR=/run/user/UID in the login's
    environment; the directory is 0700 and the user's, /run/user is root's
    0755; status reports it; it is gone after the logout."""
    uid = uid_of(world)
    gid = world.user("user1")["gid"]
    rundir = "/run/user/%d" % uid
    assert not world.exists("/run/user")
    if login == "su":
        h = world.hold_su("user1")
    elif login == "runuser":
        h = world.hold_runuser("user1")
    else:
        h = world.hold_pamlogin("dus-test", "user1")
    assert h.env.get("XDG_RUNTIME_DIR") == rundir, h.env
    assert stat(world, rundir) == "directory|user1|user1|700"
    r = world.run(["stat", "-c", "%u %g", rundir], check=True)
    assert r.stdout.split() == [str(uid), str(gid)]
    assert stat(world, "/run/user") == "directory|root|root|755"
    # The login itself can use it.
    r = world.run(world.as_user("user1", ["sh", "-c", 'echo hi > "$1/f" && cat "$1/f"', "sh",
                                          rundir]), check=True)
    assert r.stdout == "hi\n"
    st = world.ctl_json("status", "user1")
    assert st["rundir"] == rundir
    assert h.end() == 0
    wait_gone(world, rundir)
    wait_user_gone(world)
    # /run/user itself stays (other users' directories live there).
    assert stat(world, "/run/user") == "directory|root|root|755"


def test_pamtester_gets_rundir(world, daemon):
    """pamtester's PAM environment (it has no shell) is checked with a
    pam_exec helper after the module: XDG_RUNTIME_DIR is in it."""
    world.write_file(sb.TEST_DIR + "/show-env", "#!/bin/sh\n[ \"$PAM_TYPE\" = open_session ] "
                     "&& printf '%s\\n' \"${XDG_RUNTIME_DIR-unset}\" > " + sb.TEST_DIR
                     + "/pam-env-seen\nexit 0\n", mode=0o755)
    world.write_pam_service("dus-env", world.pam_stack(
        extra_session=["session  optional   pam_exec.so %s/show-env" % sb.TEST_DIR]))
    r = world.pamtester("dus-env", "user1")
    assert r.returncode == 0, r.stdout + r.stderr
    rundir = "/run/user/%d" % uid_of(world)
    assert world.read_file(sb.TEST_DIR + "/pam-env-seen").strip() == rundir
    wait_gone(world, rundir)


def test_rundir_stays_while_a_second_session_runs(world, daemon):
    rundir = "/run/user/%d" % uid_of(world)
    a = world.hold_su("user1")
    b = world.hold_runuser("user1")
    assert a.env["XDG_RUNTIME_DIR"] == b.env["XDG_RUNTIME_DIR"] == rundir
    world.write_file(rundir + "/mine", "data\n", owner="user1")
    assert a.end() == 0
    # The daemon has handled the first logout once one session is left.
    world.wait_for(lambda: [s["pid"] for s in world.sessions()] == [b.pid], what="one session left")
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert world.read_file(rundir + "/mine") == "data\n"
    # A third login meanwhile gets the same directory.
    r, xdg = login_env(world)
    assert xdg == rundir
    assert world.read_file(rundir + "/mine") == "data\n"
    assert b.end() == 0
    wait_gone(world, rundir)


def test_rundir_outlives_the_session_until_the_manager_stopped(world):
    """The directory goes only after the manager has exited: while the
    manager is still stopping (it holds its SIGTERM until the test lets it
    go), the directory is there; the manager got it as XDG_RUNTIME_DIR."""
    backend = install_custom_backend(world)
    world.run(["mkfifo", "-m", "0666", STOP_GATE], check=True)
    d = world.start_daemon({"backend": backend, "stop_delay": 0, "stop_timeout": 30})
    rundir = "/run/user/%d" % uid_of(world)
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == rundir
    env = manager_env(world)
    assert env.get("XDG_RUNTIME_DIR") == rundir
    pid = world.ctl_json("status", "user1")["manager_pid"]
    assert pid
    assert h.end() == 0
    world.wait_for(lambda: world.exists("/home/user1/.manager-stopping"), timeout=10,
                   what="the manager got its SIGTERM")
    assert world.ctl_json("status", "user1")["state"] == "stopping"
    assert stat(world, rundir) == "directory|user1|user1|700"
    world.run(["sh", "-c", 'echo go > "$1"', "sh", STOP_GATE], timeout=10, check=True)
    wait_gone(world, rundir)
    wait_user_gone(world)
    assert world.run(["kill", "-0", str(pid)]).returncode != 0
    assert d.running()


def test_lingering_manager_keeps_the_rundir(world):
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "stop_delay": 0})
    rundir = "/run/user/%d" % uid_of(world)
    r = world.ctl("enable-linger", "user1")
    assert r.returncode == 0, r.stderr
    # The lingering manager has a runtime directory without any login.
    world.wait_for(lambda: world.ctl_json("status", "user1")["state"] == "ready",
                   what="the lingering manager ready")
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert manager_env(world).get("XDG_RUNTIME_DIR") == rundir
    r, xdg = login_env(world)
    assert xdg == rundir
    # Logged out, still lingering: the directory stays with the manager.
    assert world.sessions() == []
    assert world.ctl_json("status", "user1")["state"] == "ready"
    assert stat(world, rundir) == "directory|user1|user1|700"
    r = world.ctl("disable-linger", "user1")
    assert r.returncode == 0, r.stderr
    wait_gone(world, rundir)
    wait_user_gone(world)


# ---- set earlier in the stack, norundir, manage_rundir ----------------------------

PRESET = "/run/xdg-preset/user1"


def preset_stack(world, **kw):
    """pam_env sets XDG_RUNTIME_DIR=PRESET before our module; PRESET exists
    (user1's, 0700) with a file in it."""
    world.write_file("/etc/security/dus-xdg.conf", "XDG_RUNTIME_DIR DEFAULT=%s\n" % PRESET)
    world.makedirs("/run/xdg-preset", 0o755)
    mkdir_owned(world, PRESET, 0o700, "user1")
    world.write_file(PRESET + "/keep", "keep\n", owner="user1")
    env_line = "session  required   pam_env.so readenv=0 conffile=/etc/security/dus-xdg.conf"
    wire_all(world, stack_with(world, before_module=[env_line], **kw))


def test_preset_rundir_is_left_alone(world):
    """XDG_RUNTIME_DIR set by pam_env earlier in the stack: the login keeps
    that value, the daemon creates nothing, gives the manager that value and
    removes nothing at the end."""
    preset_stack(world)
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "stop_delay": 0})
    before = snapshot(world, PRESET)
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == PRESET
    assert not world.exists("/run/user/%d" % uid_of(world))
    assert not world.exists("/run/user")
    assert manager_env(world).get("XDG_RUNTIME_DIR") == PRESET
    assert world.ctl_json("status", "user1")["rundir"] == PRESET
    assert h.end() == 0
    wait_user_gone(world)
    assert stat(world, PRESET) == "directory|user1|user1|700"
    assert snapshot(world, PRESET) == before
    assert not world.exists("/run/user")


def test_norundir(world, daemon):
    """The module's norundir: no directory created, the variable not set by us."""
    wire_all(world, stack_with(world, module_args=["norundir"]))
    h = world.hold_su("user1")
    assert "XDG_RUNTIME_DIR" not in h.env, h.env
    assert not world.exists("/run/user")
    assert world.ctl_json("status", "user1")["rundir"] is None
    assert h.end() == 0
    wait_user_gone(world)
    assert not world.exists("/run/user")


def test_norundir_manager_without_rundir(world):
    backend = install_custom_backend(world)
    wire_all(world, stack_with(world, module_args=["norundir"]))
    world.start_daemon({"backend": backend})
    r, xdg = login_env(world)
    assert xdg == "unset"
    assert "XDG_RUNTIME_DIR" not in manager_env(world)
    assert not world.exists("/run/user")


def test_norundir_with_preset_manager_gets_it(world):
    """norundir after pam_env: the login keeps pam_env's value and the
    manager still gets it (pam_dinit_userservd(8), norundir)."""
    preset_stack(world, module_args=["norundir"])
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "stop_delay": 0})
    before = snapshot(world, PRESET)
    r, xdg = login_env(world)
    assert xdg == PRESET
    assert manager_env(world).get("XDG_RUNTIME_DIR") == PRESET
    wait_user_gone(world)
    assert not world.exists("/run/user")
    assert snapshot(world, PRESET) == before


def test_manage_rundir_no(world):
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "manage_rundir": "no"})
    h = world.hold_su("user1")
    assert "XDG_RUNTIME_DIR" not in h.env
    assert "XDG_RUNTIME_DIR" not in manager_env(world)
    assert not world.exists("/run/user")
    assert world.ctl_json("status", "user1")["rundir"] is None
    assert h.end() == 0


def test_manage_rundir_yes_replaces_preset(world):
    """manage_rundir = yes: the daemon's own directory even after pam_env
    set one; pam_env's directory is not touched."""
    preset_stack(world)
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "manage_rundir": "yes", "stop_delay": 0})
    before = snapshot(world, PRESET)
    rundir = "/run/user/%d" % uid_of(world)
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == rundir
    assert manager_env(world).get("XDG_RUNTIME_DIR") == rundir
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert h.end() == 0
    wait_gone(world, rundir)
    assert snapshot(world, PRESET) == before


@pytest.mark.parametrize("template,expect", [
    ("/run/dus-rt/%n-%g", "/run/dus-rt/{name}-{gid}"),
    ("/run/dus-rt/by-name/%n", "/run/dus-rt/by-name/{name}"),
    ("/run/dus-rt/%u/%n/rt", "/run/dus-rt/{uid}/{name}/rt"),
])
def test_rundir_path_template(world, template, expect):
    u = world.user("user1")
    path = expect.format(**u)
    world.start_daemon({"rundir_path": template})
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == path
    assert stat(world, path) == "directory|user1|user1|700"
    # Missing parents are root's, 0755.
    parent = path.rsplit("/", 1)[0]
    while parent != "/run":
        assert stat(world, parent) == "directory|root|root|755", parent
        parent = parent.rsplit("/", 1)[0]
    assert not world.exists("/run/user")
    assert h.end() == 0
    wait_gone(world, path)


# ---- an existing path that is not what the daemon would make ----------------------

def prepare_bad(world, kind, rundir):
    """Put something at rundir that the daemon must refuse; returns the
    paths whose state must not change."""
    world.makedirs("/run/user", 0o755)
    decoy = sb.TEST_DIR + "/decoy"
    if kind == "symlink-to-own-dir":
        mkdir_owned(world, decoy, 0o700, "user1")
        world.write_file(decoy + "/keep", "keep\n", owner="user1")
        world.run(["ln", "-s", decoy, rundir], check=True)
        return [rundir, decoy, decoy + "/keep"]
    if kind == "symlink-to-etc":
        world.run(["ln", "-s", "/etc", rundir], check=True)
        return [rundir, "/etc", "/etc/passwd"]
    if kind == "user-symlink":
        # A symlink the user made (in a directory they could write).
        world.run(["chown", "user1", "/run/user"], check=True)
        mkdir_owned(world, decoy, 0o700, "user1")
        world.run(world.as_user("user1", ["ln", "-s", decoy, rundir]), check=True)
        return [rundir, decoy]
    if kind == "root-owned-dir":
        world.makedirs(rundir, 0o700)
        world.write_file(rundir + "/keep", "keep\n")
        return [rundir, rundir + "/keep"]
    if kind == "other-users-dir":
        world.makedirs(rundir, 0o700)
        world.run(["chown", "user2:user2", rundir], check=True)
        return [rundir]
    if kind == "mode-0755":
        world.makedirs(rundir, 0o755)
        world.run(["chown", "user1:user1", rundir], check=True)
        world.write_file(rundir + "/keep", "keep\n", owner="user1")
        return [rundir, rundir + "/keep"]
    if kind == "mode-1700":
        world.makedirs(rundir, 0o1700)
        world.run(["chown", "user1:user1", rundir], check=True)
        return [rundir]
    if kind == "file":
        world.write_file(rundir, "not a directory\n", mode=0o600)
        world.run(["chown", "user1:user1", rundir], check=True)
        return [rundir]
    if kind == "fifo":
        world.run(["mkfifo", "-m", "0700", rundir], check=True)
        world.run(["chown", "user1:user1", rundir], check=True)
        return [rundir]
    raise AssertionError(kind)


def state_of(world, paths):
    out = []
    for p in paths:
        r = world.run(["stat", "-c", "%F|%U|%G|%a|%i|%s|%N", "--", p])
        out.append(r.stdout.strip() if r.returncode == 0 else "absent")
        if r.returncode == 0 and out[-1].startswith("regular"):
            out.append(world.read_file(p))
    return out


BAD_KINDS = ["symlink-to-own-dir", "symlink-to-etc", "user-symlink", "root-owned-dir",
             "other-users-dir", "mode-0755", "mode-1700", "file", "fifo"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_existing_bad_rundir_refused(world, daemon, kind):
    """Something already at /run/user/UID that is not a 0700 directory of the
    user: the daemon refuses it with a clear log line naming the path, the
    login still proceeds (the module is optional) without our
    XDG_RUNTIME_DIR, and nothing there is changed or removed, neither during
    the session nor after it."""
    rundir = "/run/user/%d" % uid_of(world)
    watched = prepare_bad(world, kind, rundir)
    before = state_of(world, watched)
    etc_before = snapshot(world, "/etc") if "/etc" in watched else None
    m = daemon.mark()
    r, xdg = login_env(world)
    assert xdg == "unset"
    line = daemon.wait_log(r"refus\w*.*%s|%s.*refus" % (rundir, rundir), start=m)
    assert "error" in line or "warning" in line, line
    assert state_of(world, watched) == before
    # A second login, then a logout with nothing left: still untouched.
    h = world.hold_su("user1")
    assert h.env.get("XDG_RUNTIME_DIR") is None
    assert h.end() == 0
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    wait_user_gone(world)
    assert state_of(world, watched) == before
    if etc_before is not None:
        assert snapshot(world, "/etc") == etc_before


def test_existing_bad_rundir_required_module_fails_the_session(world, daemon):
    """Made `required`, the refusal reaches the login as a session error."""
    rundir = "/run/user/%d" % uid_of(world)
    prepare_bad(world, "root-owned-dir", rundir)
    world.write_pam_service("dus-req", stack_with(world, control="required"))
    r = world.pamtester("dus-req", "user1")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "session" in (r.stdout + r.stderr).lower()
    assert stat(world, rundir) == "directory|root|root|700"
    # Control: the same stack logs in once the path is gone.
    world.run(["rm", "-rf", rundir], check=True)
    r = world.pamtester("dus-req", "user1")
    assert r.returncode == 0, r.stdout + r.stderr


def test_existing_good_rundir_is_used(world, daemon):
    """A 0700 directory of the user already there (left from before) is fine."""
    rundir = "/run/user/%d" % uid_of(world)
    world.makedirs("/run/user", 0o755)
    world.makedirs(rundir, 0o700)
    world.run(["chown", "user1:user1", rundir], check=True)
    r, xdg = login_env(world)
    assert xdg == rundir


# ---- cleanup of what the user left there -------------------------------------------

PLANT = r"""
set -e
cd "$1"
victim="$2"
ln -s /etc evil
ln -s /etc/passwd passwd-link
ln -s "$victim" victim-dir
ln -s "$victim/keep" victim-file
ln "$victim/hard" hardlink
mkdir -p sub/a/b/c
echo x > sub/a/b/c/f
ln -s /etc sub/a/b/etc
ln -s / sub/root
ln -s .. sub/a/up
ln -s ../../.. sub/a/b/c/out
mkdir sub/locked && echo y > sub/locked/f && chmod 000 sub/locked
mkdir -p deep && d=deep && i=0 && while [ $i -lt 60 ]; do d=$d/d; mkdir $d; i=$((i+1)); done
echo z > $d/leaf
mkfifo fifo
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock
printf n > "$(printf 'new\nline')"
printf n > ./-rf
printf n > ' '
touch .hidden
"""


def test_cleanup_removes_planted_trees_and_nothing_outside(world, daemon):
    """The user plants symlinks to /etc, /, a directory and files of theirs
    outside, a hard link, nested and unreadable trees, special files: cleanup
    removes everything in the runtime directory and nothing outside it."""
    rundir = "/run/user/%d" % uid_of(world)
    victim = sb.TEST_DIR + "/victim"
    mkdir_owned(world, victim, 0o755, "user1")
    world.write_file(victim + "/keep", "keep\n", owner="user1")
    world.write_file(victim + "/hard", "hard\n", owner="user1")
    world.makedirs(victim + "/inner", 0o755, owner="user1")
    world.write_file(victim + "/inner/f", "inner\n", owner="user1")
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == rundir
    r = world.run(world.as_user("user1", ["sh", "-c", PLANT, "sh", rundir, victim]), timeout=60)
    assert r.returncode == 0, r.stderr
    assert world.exists(rundir + "/deep/" + "/".join(["d"] * 60) + "/leaf")
    etc_before = snapshot(world, "/etc")
    victim_before = snapshot(world, victim)
    root_before = world.run(["ls", "-A", "/"], check=True).stdout
    m = world.daemon.mark()
    assert h.end() == 0
    wait_gone(world, rundir)
    wait_user_gone(world)
    assert snapshot(world, "/etc") == etc_before
    assert snapshot(world, victim) == victim_before
    assert world.read_file(victim + "/keep") == "keep\n"
    assert world.read_file(victim + "/hard") == "hard\n"
    assert world.run(["ls", "-A", "/"], check=True).stdout == root_before
    assert stat(world, "/etc/passwd") == "regular file|root|root|644"
    # Nothing went wrong on the way (a warning would mean something was left).
    lines = world.daemon.log_lines()[m:]
    assert not [l for l in lines if "cannot remove" in l or "for removal" in l], lines


@pytest.mark.parametrize("source_fs", ["other-fs", "same-fs"])
@pytest.mark.parametrize("where", ["top", "nested"])
def test_cleanup_does_not_descend_into_a_bind_mount(world, daemon, source_fs, where):
    """A bind mount inside the runtime directory (root mounted it there) is
    not descended into: the mounted directory's contents survive, the mount
    point stays (and so the directories holding it), everything else in the
    runtime directory goes. other-fs: from /home (another tmpfs); same-fs:
    from /run, the runtime directory's own file system (same st_dev)."""
    rundir = "/run/user/%d" % uid_of(world)
    src = ("/home/user1/bindsrc" if source_fs == "other-fs" else sb.TEST_DIR + "/bindsrc")
    mkdir_owned(world, src, 0o755, "user1")
    world.makedirs(src + "/inner", 0o755, owner="user1")
    world.write_file(src + "/precious", "precious\n", owner="user1")
    world.write_file(src + "/inner/f", "f\n", owner="user1")
    h = world.hold_su("user1")
    mnt = rundir + ("/mnt" if where == "top" else "/a/b/mnt")
    world.makedirs(mnt, 0o755, owner="user1")
    world.write_file(rundir + "/sibling", "s\n", owner="user1")
    world.write_file(rundir + "/a/other", "o\n", owner="user1")
    world.run(["mount", "--bind", src, mnt], check=True)
    assert world.read_file(mnt + "/precious") == "precious\n"
    before = snapshot(world, src)
    assert h.end() == 0
    wait_user_gone(world)
    assert snapshot(world, src) == before
    assert world.read_file(src + "/precious") == "precious\n"
    # The mount is still there, with the directories that hold it.
    r = world.run(["findmnt", "-n", "-o", "TARGET", mnt])
    assert r.stdout.strip() == mnt, r.stdout + r.stderr
    assert world.read_file(mnt + "/precious") == "precious\n"
    # What was not under the mount went.
    assert not world.exists(rundir + "/sibling")
    assert not world.exists(rundir + "/a/other")


# ---- daemon restarts, failed managers, root, mixed logins ----------------------------

def test_daemon_restart_keeps_the_rundir_of_an_open_session(world):
    """SIGTERM with a session open keeps its runtime directory for the next
    daemon, which removes it after that session's logout."""
    d = world.start_daemon({"stop_delay": 0})
    rundir = "/run/user/%d" % uid_of(world)
    h = world.hold_su("user1")
    world.write_file(rundir + "/mine", "data\n", owner="user1")
    assert d.stop() == 0
    assert world.read_file(rundir + "/mine") == "data\n"
    d2 = world.start_daemon({"stop_delay": 0})
    st = world.ctl_json("status", "user1")
    assert st["rundir"] == rundir and len(st["sessions"]) == 1
    assert world.read_file(rundir + "/mine") == "data\n"
    assert h.end() == 0
    wait_gone(world, rundir)
    assert d2.running()


def test_daemon_restart_with_a_lingering_user(world):
    """SIGTERM with only a lingering manager: its directory goes with it; the
    next daemon starts the manager again with a fresh one."""
    backend = install_custom_backend(world)
    d = world.start_daemon({"backend": backend})
    rundir = "/run/user/%d" % uid_of(world)
    assert world.ctl("enable-linger", "user1").returncode == 0
    world.wait_for(lambda: world.ctl_json("status", "user1")["state"] == "ready",
                   what="lingering manager ready")
    world.write_file(rundir + "/old", "x\n", owner="user1")
    assert d.stop() == 0
    assert not world.exists(rundir)
    world.start_daemon({"backend": backend})
    world.wait_for(lambda: world.ctl_json("status", "user1")["state"] == "ready",
                   what="lingering manager ready again")
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert not world.exists(rundir + "/old")
    assert manager_env(world).get("XDG_RUNTIME_DIR") == rundir


def test_failed_manager_rundir_removed_after_last_logout(world):
    """A manager that fails for good: the login proceeds (optional module),
    the directory stays while the session lasts and goes after the logout,
    though the failed user stays visible."""
    world.write_file(sb.TEST_DIR + "/failing-backend", "#!/bin/sh\necho failing >&2\nexit 3\n",
                     mode=0o755)
    d = world.start_daemon({"backend": sb.TEST_DIR + "/failing-backend", "restart_limit": 1,
                            "stop_delay": 0})
    rundir = "/run/user/%d" % uid_of(world)
    h = world.hold_su("user1")
    world.wait_for(lambda: world.ctl_json("status", "user1")["state"] == "failed",
                   what="user1's manager failed")
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert h.end() == 0
    wait_gone(world, rundir)
    st = world.ctl_json("status", "user1")
    assert st["state"] == "failed" and st["sessions"] == []
    assert d.running()


def test_root_gets_no_rundir(world, daemon):
    """root_session = no: root's logins are not tracked and get no directory."""
    r = world.su("root", ENV_CMD)
    assert r.returncode == 0, r.stderr
    assert "XDG=unset" in r.stdout
    assert not world.exists("/run/user/0")
    assert world.users() == []


def test_managed_and_preset_logins_of_one_user(world):
    """One login without anything earlier in its stack (the daemon makes
    /run/user/UID), one whose stack sets XDG_RUNTIME_DIR with pam_env: each
    keeps its value; the daemon's directory is not removed while the manager
    (kept by the second session) uses it, and the preset one never."""
    preset_stack(world)  # every harness service now has pam_env first
    world.write_pam_service("dus-plain", world.pam_stack())
    backend = install_custom_backend(world)
    world.start_daemon({"backend": backend, "stop_delay": 0})
    before = snapshot(world, PRESET)
    rundir = "/run/user/%d" % uid_of(world)
    a = world.hold_pamlogin("dus-plain", "user1")
    assert a.env["XDG_RUNTIME_DIR"] == rundir
    b = world.hold_su("user1")
    assert b.env["XDG_RUNTIME_DIR"] == PRESET
    assert manager_env(world).get("XDG_RUNTIME_DIR") == rundir
    assert a.end() == 0
    world.wait_for(lambda: [s["pid"] for s in world.sessions()] == [b.pid], what="one session left")
    assert world.ctl_json("status", "user1")["state"] == "ready"
    assert stat(world, rundir) == "directory|user1|user1|700"
    assert b.end() == 0
    wait_gone(world, rundir)
    assert snapshot(world, PRESET) == before


# ---- rundir_size: a tmpfs of the user's own (issue 19, item 5) ----------------------

def rundir_mounts(world, path):
    """(fstype, super options, mount options) of each mount at path, from
    the sandbox's mountinfo."""
    out = []
    for line in world.read_file("/proc/1/mountinfo").splitlines():
        f = line.split()
        sep = f.index("-")
        if f[4] == path:
            out.append((f[sep + 1], set(f[sep + 3].split(",")), set(f[5].split(","))))
    return out


def test_rundir_size_tmpfs(world):
    """rundir_size = 8: the runtime dir is a tmpfs of its own, 0700, the
    user's uid and gid, nosuid,nodev, 8 MiB; writing past it fails with
    ENOSPC; a second login sees the one mount; a daemon killed with -9 and
    started again keeps it with its content; it is unmounted and removed
    after the last logout."""
    d = world.start_daemon({"rundir_size": 8, "stop_delay": 0})
    u = world.user("user1")
    rundir = "/run/user/%d" % u["uid"]
    h = world.hold_su("user1")
    assert h.env["XDG_RUNTIME_DIR"] == rundir
    mounts = rundir_mounts(world, rundir)
    assert len(mounts) == 1, mounts
    fstype, sopts, mopts = mounts[0]
    assert fstype == "tmpfs"
    assert {"nosuid", "nodev"} <= mopts, mopts
    assert {"size=8192k", "mode=700", "uid=%d" % u["uid"], "gid=%d" % u["gid"]} <= sopts, sopts
    assert stat(world, rundir) == "directory|user1|user1|700"
    # Writing past the size fails with ENOSPC (as the user, in their login's dir).
    r = world.run(world.as_user("user1", [sb.PYTHON, "-c", (
        "import errno, sys\n"
        "f = open(sys.argv[1], 'wb')\n"
        "try:\n"
        "    for _ in range(16):\n"
        "        f.write(b'x' * (1 << 20)); f.flush()\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno]); sys.exit(0)\n"
        "print('no error')\n"), rundir + "/big"]))
    assert r.stdout.strip() == "ENOSPC", (r.stdout, r.stderr)
    world.run(["rm", "-f", rundir + "/big"], check=True)
    world.write_file(rundir + "/mine", "data\n", owner="user1")
    # A second login: the same single mount.
    h2 = world.hold_su("user1")
    assert h2.env["XDG_RUNTIME_DIR"] == rundir
    assert len(rundir_mounts(world, rundir)) == 1
    assert h2.end() == 0
    # kill -9 and a new daemon: the mount and its content stay, still one.
    assert d.kill() == -9
    d2 = world.start_daemon({"rundir_size": 8, "stop_delay": 0})
    assert world.ctl_json("status", "user1")["rundir"] == rundir
    assert len(rundir_mounts(world, rundir)) == 1
    assert world.read_file(rundir + "/mine") == "data\n"
    h3 = world.hold_su("user1")
    assert len(rundir_mounts(world, rundir)) == 1
    assert h3.end() == 0
    assert h.end() == 0
    wait_gone(world, rundir)
    assert rundir_mounts(world, rundir) == []
    assert d2.running()


def test_rundir_size_tmpfs_kept_while_lingering(world):
    d = world.start_daemon({"rundir_size": 4, "stop_delay": 0})
    rundir = "/run/user/%d" % uid_of(world)
    r = world.ctl("enable-linger", "user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: len(rundir_mounts(world, rundir)) == 1, what="the tmpfs mounted")
    r, xdg = login_env(world)
    assert xdg == rundir
    # The login is over; the user lingers: the mount stays.
    world.wait_for(lambda: world.sessions() == [], what="no session")
    assert len(rundir_mounts(world, rundir)) == 1
    assert world.ctl_json("status", "user1")["rundir"] == rundir
    r = world.ctl("disable-linger", "user1")
    assert r.returncode == 0, r.stderr
    wait_gone(world, rundir)
    assert rundir_mounts(world, rundir) == []
    assert d.running()


def test_rundir_size_percent_of_ram(world):
    """rundir_size = N%: N% of the RAM, as tmpfs's own size=N% would be."""
    world.start_daemon({"rundir_size": "2%", "stop_delay": 0})
    rundir = "/run/user/%d" % uid_of(world)
    h = world.hold_su("user1")
    (fstype, sopts, _), = rundir_mounts(world, rundir)
    size_kib = [int(o[5:-1]) for o in sopts if o.startswith("size=") and o.endswith("k")]
    mem_kib = int(world.read_file("/proc/meminfo").split("MemTotal:")[1].split()[0])
    assert fstype == "tmpfs" and len(size_kib) == 1, sopts
    assert abs(size_kib[0] - mem_kib * 2 / 100) <= 1024, (size_kib, mem_kib)
    assert h.end() == 0
    wait_gone(world, rundir)
