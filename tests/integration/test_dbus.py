# SPDX-License-Identifier: BSD-2-Clause
"""Issue 5 acceptance, D-Bus: a real dbus-daemon started as a boot service of
the user's manager, from the example services the project ships
(data/backends/{runit,s6,dinit}/dbus), with runit, s6, dinit (the stand-in
in tests/dinit-standin, and the real dinit when one is on PATH).

The login waits for the manager's readiness, which includes the bus, so the
login's environment has DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/UID/bus
and dbus-send --session works from it.
"""
import os
import shutil
import subprocess

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

DATA = os.path.join(sb.REPO, "data", "backends")
STANDIN_DIR = os.path.join(sb.REPO, "tests", "dinit-standin")
MANAGER_PATH = "/usr/local/bin:/usr/bin:/bin"

LIST_NAMES = ("dbus-send --session --dest=org.freedesktop.DBus --type=method_call "
              "--print-reply /org/freedesktop/DBus org.freedesktop.DBus.ListNames")
SHOW = ('printf "ADDR=%s\\n" "${DBUS_SESSION_BUS_ADDRESS-unset}"; '
        'printf "XDG=%s\\n" "${XDG_RUNTIME_DIR-unset}"; '
        'if test -S "$XDG_RUNTIME_DIR/bus"; then echo BUS=socket; else echo BUS=none; fi')


def real_dinit_dir():
    """Directory of a real dinit on this process's PATH (not the stand-in),
    or None."""
    found = shutil.which("dinit")
    if not found:
        return None
    d = os.path.dirname(os.path.realpath(found))
    if os.path.exists(os.path.join(d, "dinit")) and os.path.samefile(d, STANDIN_DIR):
        return None
    return d


BACKENDS = ["runit", "s6", "dinit-standin", "dinit-real"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    if name == "dinit-real":
        d = real_dinit_dir()
        if d is None:
            pytest.skip("no real dinit on PATH")
        for private in sb.PRIVATE_PATHS:
            if d == private or d.startswith(private + "/"):
                pytest.fail("the dinit on PATH (%s) is under %s, which the sandbox hides"
                            % (d, private), pytrace=False)
        out = subprocess.run([os.path.join(d, "dinit"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout
        print("real dinit: %s" % (out.splitlines()[0] if out else d))
        return ("dinit", d)
    if name == "dinit-standin":
        return ("dinit", STANDIN_DIR)
    return (name, None)


def config(backend, **extra):
    name, dinit_dir = backend
    # The manager outlives one-shot logins (stop_delay) so the tests can
    # look at it afterwards; they stop it with stop-user.
    cfg = {"backend": name, "login_timeout": 20, "stop_delay": 600}
    if dinit_dir:
        cfg["manager_env"] = "PATH=%s:%s" % (dinit_dir, MANAGER_PATH)
    cfg.update(extra)
    return cfg


def host_file(*parts):
    with open(os.path.join(DATA, *parts)) as f:
        return f.read()


def install_dbus_service(world, backend, user="user1"):
    """The shipped example bus service, installed the way its comments say."""
    name = backend[0]
    home = world.user(user)["home"]
    if name == "runit":
        svc = home + "/.config/service/dbus"
        world.write_file(svc + "/run", host_file("runit", "dbus", "run"), mode=0o755, owner=user)
        world.write_file(svc + "/check", host_file("runit", "dbus", "check"), mode=0o755,
                         owner=user)
    elif name == "s6":
        svc = home + "/.config/s6/service/dbus"
        world.write_file(svc + "/run", host_file("s6", "dbus", "run"), mode=0o755, owner=user)
        world.write_file(svc + "/notification-fd", host_file("s6", "dbus", "notification-fd"),
                         owner=user)
    else:
        # System-wide, where the installed one lives in spirit
        # (/usr/lib/dinit.d/user is the host's here: /etc/dinit.d/user is
        # the sandbox's own and also in the default search path); the user
        # enables it with a boot.d link, as `dinitctl enable dbus` would.
        world.write_file("/etc/dinit.d/user/dbus", host_file("dinit", "dbus"))
        world.makedirs(home + "/.config/dinit.d/boot.d", owner=user)
        world.run(world.as_user(user, ["ln", "-s", "/etc/dinit.d/user/dbus",
                                       home + "/.config/dinit.d/boot.d/dbus"]), check=True)


def parse(stdout, key):
    vals = [l[len(key) + 1:] for l in stdout.splitlines() if l.startswith(key + "=")]
    assert len(vals) == 1, stdout
    return vals[0]


def manager_environ(world, user="user1"):
    st = world.ctl_json("status", user)
    pid = st["manager_pid"]
    assert pid, st
    r = world.run(["cat", "/proc/%d/environ" % pid], check=True)
    return dict(e.split("=", 1) for e in r.stdout.split("\0") if "=" in e)


def test_dbus_session_bus_from_the_login(world, backend):
    install_dbus_service(world, backend)
    d = world.start_daemon(config(backend))
    uid = world.user("user1")["uid"]
    bus = "/run/user/%d/bus" % uid
    r = world.su("user1", SHOW + "; " + LIST_NAMES, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse(r.stdout, "XDG") == "/run/user/%d" % uid
    assert parse(r.stdout, "ADDR") == "unix:path=" + bus
    assert parse(r.stdout, "BUS") == "socket"
    assert "method return" in r.stdout and '"org.freedesktop.DBus"' in r.stdout, r.stdout
    # The bus is the user's own: their socket, their dbus-daemon.
    st = world.run(["stat", "-c", "%F %U", bus], check=True).stdout.strip()
    assert st == "socket user1"
    r = world.run(["pgrep", "-u", "user1", "-x", "dbus-daemon"])
    assert len(r.stdout.split()) == 1, r.stdout
    # A second login, while the manager is up, gets it at once and can use it too.
    h = world.hold_su("user1")
    assert h.env.get("DBUS_SESSION_BUS_ADDRESS") == "unix:path=" + bus
    r = world.run(world.as_user("user1", ["env", "DBUS_SESSION_BUS_ADDRESS=unix:path=" + bus,
                                          "sh", "-c", LIST_NAMES]))
    assert r.returncode == 0 and '"org.freedesktop.DBus"' in r.stdout, r.stdout + r.stderr
    # The manager's environment carries the address too.
    assert manager_environ(world).get("DBUS_SESSION_BUS_ADDRESS") == "unix:path=" + bus
    assert h.end() == 0
    r = world.ctl("stop-user", "user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: world.users() == [], timeout=15, what="user1's manager stopped")
    assert world.run(["pgrep", "-u", "user1", "-x", "dbus-daemon"]).returncode != 0
    assert not world.exists(bus)
    assert d.running()


def test_export_dbus_address_no(world, backend):
    """export_dbus_address = no: the bus runs and its socket is there at
    readiness, but the address is exported neither to the login nor to the
    manager."""
    install_dbus_service(world, backend)
    world.start_daemon(config(backend, export_dbus_address=False))
    r = world.su("user1", SHOW, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse(r.stdout, "BUS") == "socket"
    assert parse(r.stdout, "ADDR") == "unset"
    assert "DBUS_SESSION_BUS_ADDRESS" not in manager_environ(world)


def test_no_bus_no_address(world):
    """No bus service: the login gets no address (there is no socket at
    readiness), while the manager has it from the start (man
    dinit-userservd.conf(5), export_dbus_address)."""
    world.start_daemon(config(("runit", None)))
    uid = world.user("user1")["uid"]
    r = world.su("user1", SHOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse(r.stdout, "BUS") == "none"
    assert parse(r.stdout, "ADDR") == "unset"
    assert manager_environ(world).get("DBUS_SESSION_BUS_ADDRESS") == "unix:path=/run/user/%d/bus" % uid


# ---- a runtime dir from an earlier module (issue 19, item 4; turnstile #33) --------

PRESET = "/run/xdg-preset/user1"

# A runit service of the user: once the bus answers, records what dbus-send
# --session gets from inside the manager's own environment, then idles. Its
# check makes the login wait for that record.
PROBE_RUN = """#!/bin/sh
exec 2>&1
# runit has no ordering between services: wait for the bus as a client
# service would (bounded; the readiness check fails the login otherwise).
i=0
while ! test -S "$XDG_RUNTIME_DIR/bus" && [ $i -lt 400 ]; do
    i=$((i + 1))
    sleep 0.05
done
{ printf "ADDR=%%s\\n" "$DBUS_SESSION_BUS_ADDRESS"; %s; } > "$HOME/probe.new" 2>&1
mv "$HOME/probe.new" "$HOME/probe.out"
exec sleep 100000
""" % LIST_NAMES
PROBE_CHECK = "#!/bin/sh\ntest -s \"$HOME/probe.out\"\n"


def install_probe(world, backend, user="user1"):
    """PROBE_RUN as a service of the user's manager, in each backend's format."""
    home = world.user(user)["home"]
    name = backend[0]
    if name == "runit":
        svc = home + "/.config/service/probe"
        world.write_file(svc + "/check", PROBE_CHECK, mode=0o755, owner=user)
    elif name == "s6":
        svc = home + "/.config/s6/service/probe"
    else:
        svc = home + "/.config/dinit.d/probe.d"
        world.write_file(home + "/.config/dinit.d/probe",
                         "type = process\ncommand = %s/run\n" % svc, owner=user)
        world.run(world.as_user(user, ["ln", "-s", "../probe",
                                       home + "/.config/dinit.d/boot.d/probe"]), check=True)
    world.write_file(svc + "/run", PROBE_RUN, mode=0o755, owner=user)


@pytest.mark.parametrize("manage_rundir", ["auto", "no"])
def test_dbus_with_a_preset_runtime_dir(world, backend, manage_rundir):
    """pam_env sets XDG_RUNTIME_DIR (as elogind or pam_rundir would) before
    the module; the bus runs as a user service there. The first login gets
    DBUS_SESSION_BUS_ADDRESS for the preset path, dbus-send --session works
    from the login and from a service of the manager, and /run/user is never
    created; the same with manage_rundir = no."""
    world.write_file("/etc/security/dus-xdg.conf", "XDG_RUNTIME_DIR DEFAULT=%s\n" % PRESET)
    world.makedirs("/run/xdg-preset", 0o755)
    world.makedirs(PRESET, 0o700)
    world.run(["chown", "user1:user1", PRESET], check=True)
    lines = world.pam_stack()
    i = next(i for i, l in enumerate(lines) if sb.PAM_MODULE in l)
    env_line = "session  required   pam_env.so readenv=0 conffile=/etc/security/dus-xdg.conf"
    for s in sb.LOGIN_SERVICES:
        world.write_pam_service(s, lines[:i] + [env_line] + lines[i:])
    install_dbus_service(world, backend)
    install_probe(world, backend)
    home = world.user("user1")["home"]
    d = world.start_daemon(config(backend, manage_rundir=manage_rundir))
    bus = PRESET + "/bus"
    # The first login: the manager starts, the login waits for the bus.
    r = world.su("user1", SHOW + "; " + LIST_NAMES, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse(r.stdout, "XDG") == PRESET
    assert parse(r.stdout, "ADDR") == "unix:path=" + bus
    assert parse(r.stdout, "BUS") == "socket"
    assert "method return" in r.stdout and '"org.freedesktop.DBus"' in r.stdout, r.stdout
    # From inside the manager: a service of the user reached the same bus
    # (runit's probe has a check, so the login waited for it; the others
    # may finish just after the login).
    world.wait_for(lambda: world.exists(home + "/probe.out"), timeout=20, what="the probe ran")
    probe = world.read_file(home + "/probe.out")
    assert "ADDR=unix:path=" + bus in probe, probe
    assert "method return" in probe and '"org.freedesktop.DBus"' in probe, probe
    assert manager_environ(world).get("XDG_RUNTIME_DIR") == PRESET
    assert manager_environ(world).get("DBUS_SESSION_BUS_ADDRESS") == "unix:path=" + bus
    assert world.run(["stat", "-c", "%F %U", bus], check=True).stdout.strip() == "socket user1"
    # A second login, the manager running: the address at once.
    h = world.hold_su("user1")
    assert h.env.get("XDG_RUNTIME_DIR") == PRESET
    assert h.env.get("DBUS_SESSION_BUS_ADDRESS") == "unix:path=" + bus
    assert h.end() == 0
    assert not world.exists("/run/user")
    assert world.ctl_json("status", "user1")["rundir"] == PRESET
    r = world.ctl("stop-user", "user1")
    assert r.returncode == 0, r.stderr
    world.wait_for(lambda: world.users() == [], timeout=15, what="user1's manager stopped")
    assert world.run(["pgrep", "-u", "user1", "-x", "dbus-daemon"]).returncode != 0
    # The preset dir is someone else's: left in place, never removed.
    assert world.exists(PRESET)
    assert not world.exists("/run/user")
    assert d.running()
