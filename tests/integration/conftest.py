# SPDX-License-Identifier: BSD-2-Clause
"""pytest fixtures for the integration tests; see tests/README.md.

    sandbox   a fresh Sandbox (sandbox.py) per test, torn down after it; the
              daemon logs are printed at teardown (pytest shows them for a
              failed test)
    world     sandbox + users user1, user2 + every login service the harness
              uses (su, su-l, runuser, runuser-l, dus-test) wired to the built
              module with socket=the default test socket
    daemon    world + a running daemon with the harness's default config
              (backend none); world.daemon is the same object

Run as root (the sandbox needs it). DUS_BUILD_DIR selects the build dir
(default: <repo>/build); tests/run sets it. DUS_DAEMON, DUS_CTL and
DUS_PAM_MODULE override single artefacts.
"""
import os
import shutil
import tempfile

import pytest

import sandbox as sb


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_build: needs the built daemon, CLI and module")
    config.addinivalue_line("markers", "soak: a churn soak with a time budget "
                            "(DUS_SOAK_SECONDS); deselect with -m 'not soak'")


def _require_root():
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (namespaces, mounts, useradd, su)",
                    pytrace=False)


def _require_build():
    for path in (sb.DAEMON, sb.CTL, sb.PAM_MODULE):
        for private in sb.PRIVATE_PATHS:
            if path.startswith(private + "/"):
                pytest.fail("%s is under %s, which the sandbox hides behind a fresh "
                            "tmpfs/overlay: use a build dir elsewhere (e.g. /var/tmp)"
                            % (path, private), pytrace=False)
    missing = [p for p in (sb.DAEMON, sb.CTL, sb.PAM_MODULE) if not os.path.exists(p)]
    if missing:
        pytest.fail("not built: %s (build dir %s; run tests/run or set DUS_BUILD_DIR)"
                    % (", ".join(missing), sb.BUILD_DIR), pytrace=False)


@pytest.fixture
def sandbox(request):
    _require_root()
    if request.node.get_closest_marker("needs_build"):
        _require_build()
    workdir = tempfile.mkdtemp(prefix="dus-it-")
    box = sb.Sandbox(workdir)
    yield box
    box.close()
    for d in box.daemons:
        print("---- daemon log (%s, exit %s) ----" % (d.config_path, d.proc.returncode))
        print(d.log())
    if hasattr(request.node, "rep_call") and request.node.rep_call.failed:
        print("---- harness files kept in %s ----" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def world(sandbox):
    _require_build()
    sandbox.add_user("user1")
    sandbox.add_user("user2")
    sandbox.wire_logins()
    sandbox.daemon = None
    return sandbox


@pytest.fixture
def daemon(world):
    world.daemon = world.start_daemon()
    return world.daemon
