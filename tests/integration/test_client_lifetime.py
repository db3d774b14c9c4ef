# SPDX-License-Identifier: BSD-2-Clause
"""Issue 12 item 4: a client is never freed inside a handler that still uses it.

A root connection opens a session whose manager never gets ready (WAIT),
shuts its reading side (so that the daemon's answer to the wait fails), and
on the same connection ends that wait itself: CLOSE_SESSION of its own
session, stop-user or restart-user of its own user. Each of these answers
the waiting login (server_release_waiter), whose failed send dropped the
client while the handler still had to queue its own result into it: a
heap-use-after-free that the ASan build of the daemon reports (tests/run
--ci runs this file against it). Afterwards the daemon must still serve,
and have done what was asked.
"""
import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

NEVER_READY = sb.TEST_DIR + "/never-ready"

# Inside the sandbox: OPEN (expects WAIT), shutdown(SHUT_RD), then the
# request that ends the wait, on the same connection; prints the session id.
END_OWN_WAIT = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[3])
import dusproto as wire
path, how = sys.argv[1], sys.argv[2]
c = wire.Conn(path, timeout=10)
c.send(wire.encode(wire.OPEN_SESSION, user="user1", service="dus-test"))
m = c.recv()
assert m["type"] == "OPEN_REPLY" and m["status"] == wire.OPEN_WAIT, m
c.sock.shutdown(socket.SHUT_RD)
if how == "close-session":
    c.send(wire.encode(wire.CLOSE_SESSION, session_id=m["session_id"]))
else:
    op = {"stop-user": 3, "restart-user": 4}[how]  # PROTO_CTL_*
    c.send(wire.encode(wire.CONTROL, op=op, user="user1"))
# Stay connected until the daemon has handled it and dropped us: our
# writing side then sees the end of the connection (EPIPE).
import time
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        c.send(wire.encode(wire.LIST_USERS))
    except OSError:
        break
    time.sleep(0.05)
print(json.dumps({"session": m["session_id"]}))
"""


@pytest.mark.parametrize("how", ["close-session", "stop-user", "restart-user"])
def test_ending_its_own_wait_does_not_free_the_client(world, how):
    world.write_file(NEVER_READY, "#!/bin/sh\nexec sleep 100000\n", mode=0o755)
    world.write_file(sb.TEST_DIR + "/end-own-wait.py", END_OWN_WAIT)
    d = world.start_daemon({"backend": NEVER_READY, "login_timeout": 30})
    m = d.mark()
    r = world.run([sb.PYTHON, sb.TEST_DIR + "/end-own-wait.py", d.socket, how, sb.HERE],
                  timeout=30)
    assert r.returncode == 0, r.stderr
    # The daemon lived through it: still running, still answering, and no
    # sanitizer report in its log.
    assert d.running(), d.log()
    sessions = world.sessions()
    log = "\n".join(d.log_lines()[m:])
    assert "AddressSanitizer" not in log and "runtime error" not in log, log
    if how == "close-session":
        assert sessions == []
        d.wait_log(r"session \d+ closed: user user1, service dus-test \(closed by the PAM", start=m)
    else:
        d.wait_log(r"%s user1" % how, start=m)
        d.wait_log(r"stopping the manager of user1", start=m)
    assert d.stop() == 0, "daemon exit status (LeakSanitizer: a leak is an error exit)"
