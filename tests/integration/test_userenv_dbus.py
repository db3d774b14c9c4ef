# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15: with the session bus running as a user service (the shipped
examples, as in test_dbus.py), setenv also updates the bus's activation
environment, from the user's side, as dbus-update-activation-environment
does: a bus-activated service started afterwards sees the variable.
"""
import pytest

from test_dbus import backend, config, install_dbus_service  # noqa: F401

pytestmark = pytest.mark.needs_build

PROBE = """[D-BUS Service]
Name=org.dus.Probe
Exec=/bin/sh -c 'env > "$HOME/probe-env.tmp" && mv "$HOME/probe-env.tmp" "$HOME/probe-env"'
"""
ACTIVATE = ("dbus-send --session --print-reply --reply-timeout=3000 --dest=org.dus.Probe "
            "/org/dus/Probe org.dus.Probe.Ping")


def test_setenv_reaches_bus_activated_services(world, backend):
    install_dbus_service(world, backend)
    home = world.user("user1")["home"]
    world.write_file(home + "/.local/share/dbus-1/services/org.dus.Probe.service", PROBE,
                     owner="user1")
    world.start_daemon(config(backend))
    h = world.hold_pamtester("user1")
    r = world.ctl("setenv", "DUS_BUSVAR=hello", as_user="user1")
    assert r.returncode == 0, r.stderr
    uid = world.user("user1")["uid"]
    world.run(world.as_user("user1", ["env", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus"
                                      % uid, "sh", "-c", ACTIVATE]), timeout=20)
    world.wait_for(lambda: world.exists(home + "/probe-env"), timeout=10,
                   what="the bus-activated probe")
    env = dict(l.split("=", 1) for l in world.read_file(home + "/probe-env").splitlines()
               if "=" in l)
    assert env.get("DUS_BUSVAR") == "hello", env
    h.release()
    assert world.ctl("stop-user", "user1").returncode == 0
