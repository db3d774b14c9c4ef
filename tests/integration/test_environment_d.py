# SPDX-License-Identifier: BSD-2-Clause
"""Issue 15, environment.d: at every manager start the helper that starts it
(dinit-launch, scandir-exec: as the user) reads the system directories and
~/.config/environment.d in environment.d(5) order: by file name across the
directories, a same-named file of a later directory masking an earlier one
(a link to /dev/null included), $NAME/${NAME} expansion, # comments; a bad
line is logged to the manager's log with file:line and skipped, and does not
stop the manager.

The two system directories (/usr/lib/environment.d, /etc/environment.d) are
replaced for the test by private ones through DINIT_USERSERVD_ENVIRONMENT_D
(manager_env), as the host's /usr is shared with the sandbox.
"""
import pytest

import sandbox as sb
from backend_fixtures import backend, bworld  # noqa: F401
from test_userenv import add_dump_service, dump

pytestmark = pytest.mark.needs_build

USR = sb.TEST_DIR + "/envd-usr"
ETC = sb.TEST_DIR + "/envd-etc"


def test_environment_d_levels(bworld, backend):
    world, b = bworld, backend
    home = world.user("user1")["home"]
    udir = home + "/.config/environment.d"
    world.write_file(USR + "/10-a.conf", "A=usr\nB=usr\n")           # masked by etc's
    world.write_file(USR + "/50-masked.conf", "M=1\n")               # masked by /dev/null
    world.write_file(USR + "/05-first.conf", "# a comment\n\nF=$HOME/f\n")
    world.write_file(ETC + "/10-a.conf", "A=etc\nP=${P}:/etc/bin\n")
    world.write_file(ETC + "/15-broken.conf", "good=1\nthis is not an assignment\n"
                     "X=${UNCLOSED\n\x01\x02garbage\n")
    world.write_file(ETC + "/20-b.conf", "C=${A}-c\nD=${UNSET:-dflt}\n")
    world.write_file(udir + "/30-u.conf", "E=$HOME/x\nA=user\nQ='$A'\n", owner="user1")
    world.write_file(udir + "/ignored.txt", "Z=1\n", owner="user1")
    world.run(world.as_user("user1", ["ln", "-s", "/dev/null", udir + "/50-masked.conf"]),
              check=True)
    add_dump_service(world, b, "user1")
    cfg = b.config(stop_delay=0, login_timeout=30)
    env = [cfg.pop("manager_env")] if "manager_env" in cfg else []
    cfg["manager_env"] = env + ["DINIT_USERSERVD_ENVIRONMENT_D=%s:%s" % (USR, ETC)]
    world.daemon = world.start_daemon(cfg)
    h = world.hold_pamtester("user1")
    d = world.wait_for(lambda: dump(world), timeout=15, what="envdump")
    assert d.get("A") == "user", d
    assert "B" not in d and "M" not in d and "Z" not in d, d
    assert d.get("F") == home + "/f"
    assert d.get("P") == ":/etc/bin"
    assert d.get("C") == "etc-c"
    assert d.get("D") == "dflt"
    assert d.get("E") == home + "/x"
    assert d.get("Q") == "$A"
    assert d.get("good") == "1" and "X" not in d
    log = world.read_file("/run/user/%d/dinit-userservd.log" % world.user("user1")["uid"])
    for line in (2, 3, 4):
        assert "%s/15-broken.conf:%d:" % (ETC, line) in log, log
    h.release()
