# SPDX-License-Identifier: BSD-2-Clause
"""Issue 7: logins over a real sshd.

A real OpenSSH sshd listens on 127.0.0.1 in the sandbox's network namespace:
host key generated in the sandbox, key authentication for user1, UsePAM yes,
and /etc/pam.d/sshd is the harness's stack (pam_unix session, the item
recorder, the built module). `ssh -o BatchMode=yes user1@127.0.0.1 CMD`:

* the session is listed while it is open, with service sshd, rhost
  127.0.0.1 and the pid of sshd's privileged process for the connection
  (the one that ran pam_open_session, as the recorder saw it); the module
  counts 127.0.0.1 as local (rhost_is_remote() in the module: empty,
  "localhost", "127.0.0.1" and "::1" are local), so remote is false;
* with backend runit and a boot service that writes a marker (its ./check
  says up once the marker is there), the marker exists before the remote
  command runs;
* after the connection ends, the session is gone and (stop_delay 0) so are
  the user's manager and every process of the user.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

SSHD = "/usr/sbin/sshd"
SSH_DIR = sb.TEST_DIR + "/ssh"


class Sshd:
    """sshd -D -e inside the sandbox; its log is read by a thread."""

    def __init__(self, world, extra_config=()):
        if not os.path.exists(SSHD) or not shutil.which("ssh"):
            pytest.fail("openssh-server and openssh-client are needed (CI installs them: "
                        ".ci/run)", pytrace=False)
        self.world = world
        world.makedirs(SSH_DIR, 0o700)
        world.makedirs("/run/sshd", 0o755)  # privilege separation directory
        world.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dus-test-host",
                   "-f", SSH_DIR + "/host_ed25519"], check=True)
        world.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dus-test-client",
                   "-f", SSH_DIR + "/id_ed25519"], check=True)
        hostkey = world.read_file(SSH_DIR + "/host_ed25519.pub").split()
        world.write_file(SSH_DIR + "/known_hosts", "127.0.0.1 %s %s\n" % (hostkey[0], hostkey[1]))
        config = [
            "ListenAddress 127.0.0.1",
            "Port 22",
            "HostKey %s/host_ed25519" % SSH_DIR,
            "PidFile %s/sshd.pid" % SSH_DIR,
            "UsePAM yes",
            "PubkeyAuthentication yes",
            "AuthenticationMethods publickey",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "StrictModes yes",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "LogLevel VERBOSE",
        ] + list(extra_config)
        world.write_file(SSH_DIR + "/sshd_config", "".join(l + "\n" for l in config), 0o600)
        r = world.run([SSHD, "-t", "-f", SSH_DIR + "/sshd_config"])
        assert r.returncode == 0, r.stderr
        self.lines = []
        self.cond = threading.Condition()
        self.proc = world.popen([SSHD, "-D", "-e", "-f", SSH_DIR + "/sshd_config"], timeout=600,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        world.held.append(self)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.wait_log(r"Server listening on 127\.0\.0\.1 port 22", timeout=20)

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise sb.SandboxError("sshd exited; log:\n" + self.log())
                    if rx.search(line):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise sb.CommandTimeout("no sshd log line %r within %s s; log:\n%s"
                                            % (pattern, timeout, self.log()))
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sb.signal.SIGKILL)
            self.proc.wait(10)
        self.thread.join(10)
        self.proc.stdout.close()


def authorize(world, user):
    home = world.user(user)["home"]
    world.makedirs(home + "/.ssh", 0o700, owner=user)
    world.write_file(home + "/.ssh/authorized_keys",
                     world.read_file(SSH_DIR + "/id_ed25519.pub"), 0o600, owner=user)


def ssh_argv(user, cmd, tty=False):
    return ["ssh", "-F", "/dev/null", "-i", SSH_DIR + "/id_ed25519", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=%s/known_hosts" % SSH_DIR, "-o", "ConnectTimeout=10",
            "-o", "LogLevel=ERROR"] + (["-tt"] if tty else ["-T"]) + \
        ["%s@127.0.0.1" % user, cmd]


def ssh(world, user, cmd, timeout=30):
    return world.run(ssh_argv(user, cmd), timeout=timeout)


def opened_by_sshd(world, user):
    return [i for i in world.pam_items()
            if i["type"] == "open_session" and i["service"] == "sshd" and i["user"] == user]


@pytest.fixture
def sshd(world):
    """world + /etc/pam.d/sshd with the module + a running sshd; user1 may
    log in with the test key."""
    world.write_pam_service("sshd", world.pam_stack())
    server = Sshd(world)
    authorize(world, "user1")
    return server


def add_marker_service(world, user):
    home = world.user(user)["home"]
    world.write_file(home + "/.config/service/marker/run",
                     "#!/bin/sh\ndate +%s.%N > \"$HOME/marker.new\"\n"
                     "mv \"$HOME/marker.new\" \"$HOME/marker\"\nexec sleep 100000\n",
                     mode=0o755, owner=user)
    world.write_file(home + "/.config/service/marker/check",
                     "#!/bin/sh\ntest -e \"$HOME/marker\"\n", mode=0o755, owner=user)


def test_ssh_session_listed_and_boot_service_up_first(world, sshd):
    add_marker_service(world, "user1")
    uid = world.user("user1")["uid"]
    d = world.start_daemon({"backend": "runit", "stop_delay": 0, "login_timeout": 20})
    cmd = ("test -e ~/marker && echo MARKER-THERE || echo MARKER-MISSING; "
           "echo \"RUNDIR=$XDG_RUNTIME_DIR\"; "
           "%s --socket %s --json list-sessions" % (sb.CTL, sb.DEFAULT_SOCKET))
    r = ssh(world, "user1", cmd)
    assert r.returncode == 0, (r.stdout, r.stderr, sshd.log())
    out = r.stdout.splitlines()
    assert out[0] == "MARKER-THERE", r.stdout
    assert out[1] == "RUNDIR=/run/user/%d" % uid
    listed = json.loads("\n".join(out[2:]))
    assert len(listed) == 1, listed
    s = listed[0]
    seen = opened_by_sshd(world, "user1")
    assert len(seen) == 1, world.pam_items()
    assert (s["user"], s["uid"], s["service"]) == ("user1", uid, "sshd")
    assert s["rhost"] == "127.0.0.1" == seen[0]["rhost"]
    assert s["remote"] is False  # 127.0.0.1 is local to the module
    assert s["pid"] == seen[0]["pid"]
    assert s["tty"] == seen[0]["tty"]
    print("ssh session as listed: %r" % s)
    # Logged out: the session is gone, and with it the manager and every
    # process of user1.
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    world.wait_for(lambda: world.users() == [], timeout=15, what="no users")
    world.wait_for(lambda: world.run(["pgrep", "-u", str(uid)]).returncode == 1,
                   timeout=15, what="no process of user1")
    assert d.stop() == 0


def test_ssh_held_session_seen_from_outside(world, sshd):
    """A connection kept open: root sees the session (service sshd, rhost
    127.0.0.1, the sshd process that opened it); closing the connection
    ends it."""
    uid = world.user("user1")["uid"]
    d = world.start_daemon({"stop_delay": 0})
    conn = world.popen(ssh_argv("user1", "echo %s; read line; echo got:$line" % sb.STARTED),
                       timeout=120, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    world.held.append(_Proc(conn))
    reader = sb.LineReader(conn.stdout)
    reader.read_until(lambda l: l == sb.STARTED, 30, "the remote shell's marker")
    sessions = world.sessions()
    assert len(sessions) == 1, sessions
    s = sessions[0]
    seen = opened_by_sshd(world, "user1")
    assert len(seen) == 1
    assert (s["user"], s["service"], s["rhost"], s["remote"]) == ("user1", "sshd", "127.0.0.1",
                                                                  False)
    assert s["pid"] == seen[0]["pid"]
    # The pid is sshd's privileged process for this connection, running as root.
    r = world.run(["ps", "-o", "uid=,args=", "-p", str(s["pid"])], check=True)
    uid_col, args = r.stdout.split(None, 1)
    assert uid_col == "0" and args.startswith("sshd: user1"), r.stdout
    conn.stdin.write(b"bye\n")
    conn.stdin.close()
    assert reader.read_rest(30) == ["got:bye"]
    assert conn.wait(30) == 0
    world.wait_for(lambda: world.sessions() == [], what="no sessions")
    world.wait_for(lambda: world.users() == [], timeout=15, what="no users")
    assert world.run(["pgrep", "-u", str(uid)]).returncode == 1
    assert d.stop() == 0


def test_ssh_connection_killed_ends_session(world, sshd):
    """The ssh connection dies (client SIGKILLed): sshd closes the session
    (or its process exits); either way the daemon forgets it."""
    d = world.start_daemon({"stop_delay": 0})
    # sh prints its pid (inside the sandbox) and becomes ssh.
    conn = world.popen(["sh", "-c", 'echo "ssh-pid $$"; exec "$@"', "sh"]
                       + ssh_argv("user1", "echo %s; exec sleep 1000" % sb.STARTED), timeout=120,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    world.held.append(_Proc(conn))
    reader = sb.LineReader(conn.stdout)
    ssh_pid = int(reader.readline(10).split()[1])
    reader.read_until(lambda l: l == sb.STARTED, 30, "the remote shell's marker")
    assert [s["service"] for s in world.sessions()] == ["sshd"]
    world.run(["kill", "-KILL", str(ssh_pid)], check=True)
    assert conn.wait(10) != 0
    world.wait_for(lambda: world.sessions() == [], timeout=10, what="no sessions")
    assert d.running()
    assert d.stop() == 0


def test_ssh_without_daemon_is_not_delayed(world, sshd):
    """No daemon: ssh logins work and the module costs nothing noticeable."""
    r = ssh(world, "user1", "echo hello")
    assert r.returncode == 0 and r.stdout.strip() == "hello", (r.stdout, r.stderr)
    assert len(opened_by_sshd(world, "user1")) == 1
    assert r.elapsed < 3.0


class _Proc:
    """Teardown helper for a background process (Sandbox.close calls close())."""

    def __init__(self, proc):
        self.proc = proc

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sb.signal.SIGKILL)
            self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except (OSError, ValueError):
                pass
