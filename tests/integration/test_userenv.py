# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15, the manager environment at run time, for every backend (dinit:
the stand-in, or the real dinit when one is on PATH; runit; s6): a variable
set with setenv by the user after login is seen by a service started
afterwards; import-environment from inside a `su -l` login imports that
login's value; a manager restart keeps the variables; unsetenv removes one;
after the last logout and a new login they are gone. Another user may not
change or read them; root may.

The service writes its pid and environment to ~/envdump and sleeps; the test
kills it and the manager starts it again (a service started afterwards).
runit and s6 services read the run-time variables the documented way
(chpst -e / s6-envdir on $XDG_RUNTIME_DIR/dinit-userservd/env).
"""
import json

import pytest

import sandbox as sb
from backend_fixtures import backend, bworld  # noqa: F401

pytestmark = pytest.mark.needs_build

DUMP = 'echo "PID=$$" > "$HOME/envdump.tmp"; env >> "$HOME/envdump.tmp"; ' \
       'mv -f "$HOME/envdump.tmp" "$HOME/envdump"; exec sleep 100000'
ENVDIR = '"$XDG_RUNTIME_DIR/dinit-userservd/env"'


def add_dump_service(world, b, user):
    if b.name == "dinit":
        b._write(world, user, "envdump", "type = process\ncommand = /bin/sh @SCRIPT@\n"
                 "restart = yes\nrestart-limit-count = 100\n", DUMP)
    elif b.name == "runit":
        b.add_service(world, user, "envdump", "exec chpst -e %s sh -c '%s'"
                      % (ENVDIR, DUMP.replace("'", "'\\''")))
    else:
        b.add_service(world, user, "envdump", "exec s6-envdir %s sh -c '%s'"
                      % (ENVDIR, DUMP.replace("'", "'\\''")))


def dump(world, user="user1"):
    path = world.user(user)["home"] + "/envdump"
    if not world.exists(path):
        return None
    d = {}
    for line in world.read_file(path).splitlines():
        k, eq, v = line.partition("=")
        if eq:
            d[k] = v
    return d


def fresh_dump(world, old_pid, timeout=15):
    """Kill the service (pid old_pid) and wait for its next run's dump."""
    if old_pid:
        world.run(["kill", str(old_pid)])
    return world.wait_for(lambda: (dump(world) or {}).get("PID") not in (None, old_pid)
                          and dump(world), timeout=timeout, what="a new envdump")


def ctl(world, *args, as_user="user1"):
    return world.ctl(*args, as_user=as_user)


def show(world, user="user1", as_user="user1"):
    r = world.ctl("--json", "show-environment", "-u", user, as_user=as_user)
    assert r.returncode == 0, r.stderr
    js = json.loads(r.stdout)
    txt = world.ctl("show-environment", "-u", user, as_user=as_user).stdout
    assert dict(l.split("=", 1) for l in txt.splitlines()) == js
    return js


def test_setenv_lifecycle(bworld, backend):
    world, b = bworld, backend
    add_dump_service(world, b, "user1")
    world.daemon = world.start_daemon(b.config(stop_delay=0, login_timeout=30))
    h = world.hold_pamtester("user1")
    first = world.wait_for(lambda: dump(world), timeout=15, what="envdump")
    assert "DUS_FOO" not in first

    # Someone else may neither change nor read user1's environment.
    for args in (["setenv", "-u", "user1", "DUS_FOO=evil"], ["unsetenv", "-u", "user1", "X"],
                 ["show-environment", "-u", "user1"]):
        r = ctl(world, *args, as_user="user2")
        assert r.returncode == 1 and "permission denied" in r.stderr, (args, r.stderr)
    assert world.ctl("show-environment", "-u", "user1").stdout == ""

    r = ctl(world, "setenv", "DUS_FOO=bar baz", "DUS_EMPTY=")
    assert r.returncode == 0, r.stderr
    assert show(world) == {"DUS_FOO": "bar baz", "DUS_EMPTY": ""}
    d = fresh_dump(world, first["PID"])
    assert d.get("DUS_FOO") == "bar baz", d

    # import-environment inside a su -l login of the user: that login's value.
    r = world.su("user1", "DUS_IMP=imported %s --socket %s import-environment DUS_IMP "
                 "DUS_MISSING" % (sb.CTL, sb.DEFAULT_SOCKET))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "DUS_MISSING is not set" in r.stdout + r.stderr
    assert show(world) == {"DUS_FOO": "bar baz", "DUS_EMPTY": "", "DUS_IMP": "imported"}
    # Root may set another user's.
    assert world.ctl("setenv", "-u", "user1", "DUS_ROOT=1").returncode == 0
    d = fresh_dump(world, d["PID"])
    assert (d.get("DUS_IMP"), d.get("DUS_ROOT")) == ("imported", "1"), d

    # A manager restart keeps them (they are in its environment from the start).
    mgr = world.ctl_json("status", "user1")["manager_pid"]
    assert ctl(world, "restart-user", "user1").returncode == 0
    world.wait_for(lambda: world.ctl_json("status", "user1")["manager_pid"] not in (None, mgr)
                   and world.ctl_json("status", "user1")["state"] == "ready", timeout=15,
                   what="restarted manager")
    d = world.wait_for(lambda: (dump(world) or {}).get("PID") != d["PID"] and dump(world),
                       timeout=15, what="dump after restart")
    assert (d.get("DUS_FOO"), d.get("DUS_IMP")) == ("bar baz", "imported"), d
    assert show(world)["DUS_FOO"] == "bar baz"

    # unsetenv: gone for the next start of the service.
    assert ctl(world, "unsetenv", "DUS_FOO").returncode == 0
    assert "DUS_FOO" not in show(world)
    d = fresh_dump(world, d["PID"])
    assert "DUS_FOO" not in d and d.get("DUS_IMP") == "imported", d

    # The last logout stops the manager: forgotten; a new login starts clean.
    assert h.release() == 0
    world.wait_for(lambda: world.users() == [], timeout=15, what="user1 gone")
    world.run(["rm", "-f", world.user("user1")["home"] + "/envdump"], check=True)
    h = world.hold_pamtester("user1")
    d = world.wait_for(lambda: dump(world), timeout=15, what="envdump")
    assert not any(k.startswith("DUS_") for k in d), d
    assert show(world) == {}
    h.release()


def test_setenv_needs_a_manager(world):
    world.daemon = world.start_daemon({"backend": "none"})
    r = world.ctl("setenv", "A=b", as_user="user1")
    assert r.returncode == 1 and "no running service manager" in r.stderr, r.stderr
    r = world.ctl("setenv", "1A=b", as_user="user1")
    assert r.returncode == 2
    r = world.ctl("unsetenv", "A=b", as_user="user1")
    assert r.returncode == 2
    # An import of only unset variables warns and changes nothing.
    r = world.ctl("import-environment", "DUS_NOT_SET_ANYWHERE", as_user="user1")
    assert r.returncode == 0 and "not set" in r.stderr
