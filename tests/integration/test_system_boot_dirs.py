# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15, system_boot_dirs (dinit backend): services linked in a system
boot dir autostart for every user, and the login waits for them; a user masks
one with a same-named link to /dev/null in ~/.config/dinit.d/boot.d; a user's
own link of that name wins. Runs against the stand-in, or the real dinit when
one is on PATH.
"""
import pytest

import sandbox as sb
from backend_fixtures import Dinit

pytestmark = pytest.mark.needs_build

SYS_SERVICES = "/etc/dinit.d/user"      # in the default dinit_service_dirs
SYS_BOOT = "/etc/dinit.d/user/boot.d"   # first of the default system_boot_dirs
MARK = 'touch "$HOME/%s-ran"; exec sleep 100000'


def ran(world, user, name):
    return world.exists("%s/%s-ran" % (world.user(user)["home"], name))


def test_system_boot_dirs_and_masking(world):
    b = Dinit()
    world.makedirs(SYS_BOOT)
    for name in ("sysa", "sysb", "sysc"):
        world.write_file("%s/%s.sh" % (SYS_SERVICES, name), "#!/bin/sh\n" + MARK % name + "\n",
                         mode=0o755)
        world.write_file("%s/%s" % (SYS_SERVICES, name),
                         "type = process\ncommand = /bin/sh %s/%s.sh\n" % (SYS_SERVICES, name))
        world.run(["ln", "-s", "../" + name, "%s/%s" % (SYS_BOOT, name)], check=True)
    # user1 masks sysb; user2 masks nothing.
    bootd = world.user("user1")["home"] + "/.config/dinit.d/boot.d"
    world.makedirs(bootd, owner="user1")
    world.run(world.as_user("user1", ["ln", "-s", "/dev/null", bootd + "/sysb"]), check=True)

    world.daemon = world.start_daemon(b.config(stop_delay=0, login_timeout=30))
    r = world.pamtester("dus-test", "user1")
    assert r.returncode == 0, r.stdout
    # Ready means every autostart service has started: no waiting needed here.
    assert ran(world, "user1", "sysa") and ran(world, "user1", "sysc")
    assert not ran(world, "user1", "sysb")
    r = world.pamtester("dus-test", "user2")
    assert r.returncode == 0, r.stdout
    assert all(ran(world, "user2", n) for n in ("sysa", "sysb", "sysc"))

    # Unmasked again: the next start of user1's manager runs it.
    world.wait_for(lambda: world.users() == [], timeout=15, what="managers stopped")
    world.run(["rm", bootd + "/sysb"], check=True)
    r = world.pamtester("dus-test", "user1")
    assert r.returncode == 0, r.stdout
    assert ran(world, "user1", "sysb")


def test_system_boot_dirs_none(world):
    b = Dinit()
    world.makedirs(SYS_BOOT)
    world.write_file(SYS_SERVICES + "/sysa", "type = process\ncommand = /bin/sh -c '%s'\n"
                     % (MARK % "sysa"))
    world.run(["ln", "-s", "../sysa", SYS_BOOT + "/sysa"], check=True)
    world.daemon = world.start_daemon(b.config(stop_delay=0, system_boot_dirs="none"))
    assert world.pamtester("dus-test", "user1").returncode == 0
    assert not ran(world, "user1", "sysa")
