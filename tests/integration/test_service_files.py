# SPDX-License-Identifier: BSD-2-Clause
"""Issue 16: the system service files start the daemon in the right order.

The dinit service generated into the build dir (data/dinit-userservd, the
file `meson install` installs) is run as it is, by dinit (the real one when
`dinit` is on PATH, else tests/dinit-standin), with the built daemon placed
at the path its `command` names. dinit must report the service started only
once the control socket accepts: the daemon is held before it listens (its
config file is a FIFO the test opens, so the daemon blocks reading it), and
no "[  OK  ]" may come while it is held; after the config is written, the
"[  OK  ]" comes and the socket answers at once.

The runit and OpenRC files are checked for the configured paths and parsed
by sh -n (neither runit-init nor OpenRC runs here).
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import sandbox as sb
from backend_fixtures import dinit_dir

pytestmark = pytest.mark.needs_build

DATA = os.path.join(sb.BUILD_DIR, "data")
DINIT_SERVICE = os.path.join(DATA, "dinit-userservd")
RUNIT_RUN = os.path.join(DATA, "run")
OPENRC_SCRIPT = os.path.join(DATA, "openrc", "dinit-userservd")
SERVICES_DIR = "/run/dus-svc/dinit.d"
DINIT_SOCKET = "/run/dus-svc/dinitctl"
OK_LINE = "[  OK  ] dinit-userservd"
# How long dinit must keep quiet while the daemon is held before listening.
QUIET = 3.0


def read(path):
    with open(path) as f:
        return f.read()


def settings(text):
    """[(name, value)] of a dinit service description (no comments)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([\w.-]+)\s*[=:]\s*(.*)$", line)
        assert m, "unparsable line: %r" % line
        out.append((m.group(1), m.group(2)))
    return out


def daemon_default_config():
    out = subprocess.run([sb.DAEMON, "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    m = re.search(r"configuration file \(default (/\S+)\)", out)
    assert m, "no default config path in: " + out
    return m.group(1)


def needs_overlay(path):
    d = os.path.dirname(path)
    return not any(d == p or d.startswith(p + "/") for p in sb.PRIVATE_PATHS)


def test_dinit_service_settings():
    s = dict(settings(read(DINIT_SERVICE)))
    assert s["type"] == "process"
    assert s["ready-notification"] == "pipefd:3"
    assert re.fullmatch(r"/\S+/dinit-userservd --ready-fd 3", s["command"])
    assert s["before"] == "login.target"
    # Nothing that fails to load where a service of that name does not exist.
    assert not any(k in s for k in ("depends-on", "depends-ms", "waits-for")), s


def test_dinit_reports_started_only_once_the_socket_accepts():
    command = dict(settings(read(DINIT_SERVICE)))["command"]
    daemon_path = command.split()[0]
    config_path = daemon_default_config()
    dinit, label = dinit_dir()
    overlays = sorted({os.path.dirname(p) for p in (daemon_path, config_path)
                       if needs_overlay(p)})
    for d in overlays:
        if not os.path.isdir(d):
            pytest.fail("%s does not exist on this host: cannot place %s there in the sandbox"
                        % (d, daemon_path), pytrace=False)
    workdir = tempfile.mkdtemp(prefix="dus-svc-")
    box = sb.Sandbox(workdir, overlays=overlays)
    proc = None
    try:
        box.run(["install", "-m", "0755", sb.DAEMON, daemon_path], check=True)
        box.run(["mkdir", "-p", SERVICES_DIR], check=True)
        box.run(["cp", DINIT_SERVICE, SERVICES_DIR + "/dinit-userservd"], check=True)
        box.run(["mkfifo", "-m", "0600", config_path], check=True)
        env = dict(sb.CLEAN_ENV, PATH=dinit + ":" + sb.CLEAN_ENV["PATH"],
                   DINIT_USERSERVD_LIBEXECDIR=sb.LIBEXEC_DIR)
        proc = box.popen(["sh", "-c", 'echo $$; exec "$@"', "sh", "dinit", "--user",
                          "-d", SERVICES_DIR, "-p", DINIT_SOCKET, "dinit-userservd"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        out = sb.LineReader(proc.stdout)
        dinit_pid = int(out.readline(10))

        # Block until the daemon opens its config (the FIFO) for reading: it is
        # then started but not listening yet.
        opened = {}

        def open_fifo():
            try:
                opened["f"] = open(box.host_path(config_path), "w")
            except OSError as e:
                opened["error"] = e
        t = threading.Thread(target=open_fifo, daemon=True)
        t.start()
        t.join(30)
        assert "f" in opened, "the daemon never opened its config %s (%s); dinit said: %s" % (
            config_path, opened.get("error", "timeout"), out.lines)

        # dinit must not report the service started while the daemon is held.
        deadline = time.monotonic() + QUIET
        try:
            while True:
                line = out.readline(max(0.01, deadline - time.monotonic()))
                assert line != OK_LINE, \
                    "%s reported the service started before the socket listened" % label
                if line is None:
                    pytest.fail("%s exited while the daemon was held: %s" % (label, out.lines))
        except TimeoutError:
            pass
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            with pytest.raises(OSError):
                s.connect(box.host_path(sb.DEFAULT_SOCKET))

        with opened["f"] as f:
            f.write(sb.config_text(sb.DEFAULT_CONFIG))
        while True:
            line = out.readline(30)
            assert line is not None, "%s exited: %s" % (label, out.lines)
            if line == OK_LINE:
                break
        # Started: the socket accepts and the daemon answers, with no wait.
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(box.host_path(sb.DEFAULT_SOCKET))
        r = box.ctl("list-users")
        assert r.returncode == 0, r.stderr
        log = box.run(["cat", "/var/log/dinit-userservd.log"]).stdout
        assert "listening on %s" % sb.DEFAULT_SOCKET in log, log

        # The stop goes through the daemon's SIGTERM path.
        box.run(["kill", "-TERM", str(dinit_pid)], check=True)
        assert proc.wait(timeout=30) == 0, out.lines
        log = box.run(["cat", "/var/log/dinit-userservd.log"]).stdout
        assert "exiting" in log, log
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        box.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_runit_run_uses_the_configured_sbindir():
    text = read(RUNIT_RUN)
    sbindir = os.path.dirname(dict(settings(read(DINIT_SERVICE)))["command"].split()[0])
    assert re.search(r"^exec %s/dinit-userservd 2>&1$" % re.escape(sbindir), text, re.M), text
    assert os.access(RUNIT_RUN, os.X_OK)
    assert subprocess.run(["sh", "-n", RUNIT_RUN], timeout=10).returncode == 0


def test_runit_check_waits_for_the_socket():
    text = read(os.path.join(DATA, "check"))
    assert re.search(r"^exec /\S+/dinit-userservctl list-users >/dev/null 2>&1$", text, re.M)
    assert os.access(os.path.join(DATA, "check"), os.X_OK)
    assert subprocess.run(["sh", "-n", os.path.join(DATA, "check")], timeout=10).returncode == 0


def test_runit_check_exits_0_only_when_the_daemon_answers(world):
    check = os.path.join(DATA, "check")
    # the generated check names the installed CLI; run it with the built one
    script = read(check).replace(read(check).split("exec ", 1)[1].split()[0], sb.CTL)
    world.write_file("/run/dus-check", script, mode=0o755)
    assert world.run(["/run/dus-check"]).returncode != 0
    world.start_daemon()
    assert world.run(["/run/dus-check"]).returncode == 0


def test_openrc_script():
    text = read(OPENRC_SCRIPT)
    assert text.startswith("#!/sbin/openrc-run\n")
    sbindir = os.path.dirname(dict(settings(read(DINIT_SERVICE)))["command"].split()[0])
    assert 'command="%s/dinit-userservd"' % sbindir in text
    assert "supervisor=supervise-daemon" in text
    # ordering: after the local filesystems, before what logs users in
    assert re.search(r"^\s*need localmount$", text, re.M)
    assert re.search(r"^\s*before .*\bagetty\b", text, re.M)
    # readiness: start waits for the socket to answer, with a deadline
    assert re.search(r"^start_post\(\)", text, re.M)
    assert "dinit-userservctl list-users" in text
    assert subprocess.run(["sh", "-n", OPENRC_SCRIPT], timeout=10).returncode == 0
