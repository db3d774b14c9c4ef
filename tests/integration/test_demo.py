# SPDX-License-Identifier: BSD-2-Clause
"""Issue 9: the README's first command, `bash demo/run`, runs and proves what it shows.

The demo is run as a user would run it, minus the apt-get and build steps
(`--no-install --build-dir <the tests' build dir>`): it builds its own sandbox
(a separate one from the test fixtures'), so these tests use no fixture. The
artefact overrides of the harness (DUS_DAEMON, DUS_CTL, DUS_PAM_MODULE) reach the
demo through the environment, as they reach the other tests.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import sandbox as sb

pytestmark = pytest.mark.needs_build

DEMO = os.path.join(sb.REPO, "demo", "run")
STANDIN_DIR = os.path.join(sb.REPO, "tests", "dinit-standin")


def require_root_and_build():
    if os.geteuid() != 0:
        pytest.fail("the demo needs root (namespaces, mounts, useradd, su)", pytrace=False)
    missing = [p for p in (sb.DAEMON, sb.CTL, sb.PAM_MODULE) if not os.path.exists(p)]
    if missing:
        pytest.fail("not built: %s" % ", ".join(missing), pytrace=False)


def run_demo(*args, path_prefix=None, build_dir=None, timeout=300):
    env = dict(os.environ)
    if path_prefix:
        env["PATH"] = path_prefix + ":" + env.get("PATH", "/usr/bin:/bin")
    argv = ["bash", DEMO, "--no-install", "--build-dir", build_dir or sb.BUILD_DIR] + list(args)
    r = subprocess.run(["timeout", "-k", "5", str(timeout)] + argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       timeout=timeout + 30)
    out = r.stdout.decode(errors="replace")
    print(out)  # shown by pytest when the test fails
    return r.returncode, out


def check_success(out, backend):
    """The demo's run as a whole: every step, the key facts it showed, its checks."""
    steps = re.findall(r"^\[(\d)/8\] ", out, re.M)
    assert steps == [str(i) for i in range(1, 9)], steps
    assert "FAILED" not in out
    m = re.search(r"^demo: all (\d+) checks passed \(backend (\w+)\)\.$", out, re.M)
    assert m, "no summary line"
    assert m.group(2) == backend
    # Every check printed its [ok] line, and there are no fewer of them than
    # the demo makes for this backend.
    oks = re.findall(r"^    \[ok\] ", out, re.M)
    assert len(oks) == int(m.group(1))
    assert len(oks) >= (25 if backend == "runit" else 23)

    login = out[out.index("[5/8]"):out.index("[6/8]")]
    uid = re.search(r"^\s*XDG_RUNTIME_DIR=/run/user/(\d+)$", login, re.M)
    assert uid, "no XDG_RUNTIME_DIR in the login"
    rundir = "/run/user/" + uid.group(1)
    assert re.search(r"^\s*drwx------ demo:demo %s$" % rundir, login, re.M)
    assert re.search(r"^\s*DBUS_SESSION_BUS_ADDRESS=unix:path=%s/bus$" % rundir, login, re.M)
    assert re.search(r"^\s*method return .*\n\s*string \"[0-9a-f]{32}\"$", login, re.M)
    assert re.search(r"^\s*Hello from demo's greeter service, started at [\d:]+ by %s$"
                     % backend, login, re.M)
    if backend == "runit":
        for svc in ("dbus", "greeter"):
            assert re.search(r"^\s*run: /home/demo/\.config/service/%s: \(pid \d+\)" % svc,
                             login, re.M)

    outside = out[out.index("[6/8]"):out.index("[7/8]")]
    assert re.search(r"^\s*state:\s+ready$", outside, re.M)
    assert re.search(r"^\s*backend:\s+%s$" % backend, outside, re.M)
    assert re.search(r"^\s*sessions:\s+1$", outside, re.M)
    assert re.search(r"info: manager of demo is ready$", outside, re.M)

    logout = out[out.index("[7/8]"):out.index("[8/8]")]
    assert re.search(r"info: the manager of demo stopped \(exited with status 0\)$", logout, re.M)
    assert re.search(r"info: removed %s$" % rundir, logout, re.M)

    after = out[out.index("[8/8]"):]
    assert re.search(r"^    # ps -u demo -o pid,args\n\s+\(nothing\)$", after, re.M)
    assert re.search(r"^    # dinit-userservctl list-users\n\s+no users$", after, re.M)
    assert "[ok] the host is as it was" in after


def test_demo_runit():
    """The demo as the README runs it on Debian 12 (no dinit there: runit)."""
    require_root_and_build()
    code, out = run_demo("--backend", "runit")
    assert code == 0, "demo exited %d" % code
    check_success(out, "runit")


def test_demo_dinit_backend():
    """With a dinit on PATH the demo uses the dinit backend: here the stand-in
    (tests/dinit-standin), or the real dinit when one is installed."""
    require_root_and_build()
    real = shutil.which("dinit")
    code, out = run_demo("--backend", "dinit", path_prefix=None if real else STANDIN_DIR)
    assert code == 0, "demo exited %d" % code
    check_success(out, "dinit")


def test_demo_fails_with_the_reason_when_not_built():
    require_root_and_build()
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="dus-demo-empty-") as empty:
        code, out = run_demo(build_dir=empty, timeout=60)
    assert code == 1
    assert re.search(r"^demo: FAILED: not built: %s/src/daemon/dinit-userservd" % re.escape(empty),
                     out, re.M), out


def test_demo_fails_with_the_reason_inside_the_sandbox():
    """A step that fails inside the sandbox (the demo user exists already: root)
    ends the demo with status 1, the failed step named, the daemon's log shown,
    and nothing left behind on the host."""
    require_root_and_build()
    code, out = run_demo("--user", "root", timeout=120)
    assert code == 1
    assert re.search(r"^demo: FAILED: useradd -m root:", out, re.M), out
    assert "---- daemon log ----" in out
    assert "checks passed" not in out
