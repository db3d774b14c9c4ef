#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""PID 1 of a test sandbox.

Started by sandbox.py as
    unshare --mount --pid --net --fork --kill-child --mount-proc python3 sandbox_init.py [OVERLAY...]
it builds the sandbox's private world, prints one line "ready" on stdout and
then reaps every process of the PID namespace until it is killed (the
harness SIGKILLs the unshare process, and --kill-child takes this process and
with it the whole namespace down).

Private world (all of it vanishes with the mount namespace):
  * overlayfs over /etc, /var/lib and every OVERLAY argument (absolute
    directories), upper/work dirs on a tmpfs that is detached from the tree;
  * fresh tmpfs on /run, /home, /tmp, /var/log, /dev/shm;
  * a new devpts instance on /dev/pts with its ptmx bound over /dev/ptmx;
  * the loopback interface up.
A setup failure prints "error: ..." instead of "ready" and exits 1.
"""
import os
import signal
import subprocess
import sys

DEFAULT_OVERLAYS = ["/etc", "/var/lib"]


def run(*argv):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), r.returncode,
                                                r.stdout.decode(errors="replace").strip()))


def setup(overlays):
    # unshare(1) already made every mount private; say so again so that no
    # mount below can ever propagate to the host.
    run("mount", "--make-rprivate", "/")

    # Storage for the overlays' upper and work dirs: a tmpfs mounted on /tmp
    # for the time of the setup, lazily unmounted afterwards (the overlays
    # keep it alive; nothing in the sandbox can reach it by path).
    run("mount", "-t", "tmpfs", "-o", "mode=0700", "sandbox-overlays", "/tmp")
    for i, path in enumerate(overlays):
        if not os.path.isabs(path) or not os.path.isdir(path):
            raise RuntimeError("overlay %r: not an absolute directory" % path)
        upper = "/tmp/%d/upper" % i
        work = "/tmp/%d/work" % i
        os.makedirs(upper)
        os.makedirs(work)
        st = os.stat(path)
        os.chmod(upper, st.st_mode & 0o7777)
        os.chown(upper, st.st_uid, st.st_gid)
        run("mount", "-t", "overlay", "overlay",
            "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (path, upper, work), path)
    run("umount", "-l", "/tmp")

    for path, mode in (("/run", "0755"), ("/home", "0755"), ("/tmp", "1777"),
                       ("/var/log", "0755"), ("/dev/shm", "1777")):
        run("mount", "-t", "tmpfs", "-o", "mode=%s,nosuid,nodev" % mode, "sandbox", path)
    os.mkdir("/run/lock", 0o755)
    os.chmod("/run/lock", 0o1777)
    # Files useradd, login and su expect to exist.
    for f in ("/var/log/lastlog", "/var/log/faillog", "/var/log/wtmp", "/var/log/btmp"):
        open(f, "a").close()
    os.chmod("/var/log/btmp", 0o600)

    # su and login want a pty of their own.
    run("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5",
        "devpts", "/dev/pts")
    run("mount", "--bind", "/dev/pts/ptmx", "/dev/ptmx")

    run("ip", "link", "set", "lo", "up")


def reap_forever():
    # Block SIGCHLD and take it synchronously: no race between "no child left
    # to reap" and going to sleep.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        signal.sigwait({signal.SIGCHLD})


def main():
    overlays = DEFAULT_OVERLAYS + [p for p in sys.argv[1:] if p not in DEFAULT_OVERLAYS]
    try:
        setup(overlays)
    except Exception as e:  # report any setup failure to the harness
        sys.stdout.write("error: %s\n" % e)
        sys.stdout.flush()
        sys.exit(1)
    os.chdir("/")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    reap_forever()


if __name__ == "__main__":
    main()
