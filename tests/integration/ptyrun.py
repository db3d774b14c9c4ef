#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Run a command on a new pseudo-terminal (inside the sandbox), like a login.

    python3 ptyrun.py CMD [ARG...]

The command runs in its own session with the pty's slave as controlling
terminal and as stdin/stdout/stderr (echo off, so the output holds only what
the command writes). Before anything else ptyrun prints one line
"ptyrun-child PID" (the command's pid in the sandbox) on stdout. Then it
copies its stdin to the pty and the pty's output to its stdout until the
command has exited, and exits with the command's status (128+N when killed by
signal N). End of ptyrun's stdin is passed on as an end-of-file character.
"""
import errno
import fcntl
import os
import select
import signal
import sys
import termios


def main():
    argv = sys.argv[1:]
    if not argv:
        sys.stderr.write("usage: ptyrun.py CMD [ARG...]\n")
        return 2
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)  # lflag
    termios.tcsetattr(slave, termios.TCSANOW, attrs)

    # SIGCHLD wakes the select loop through a pipe (no polling).
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.close(slave)
            os.close(master)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, ("ptyrun: %s: %s\n" % (argv[0], e)).encode())
        os._exit(127)
    os.close(slave)
    out = sys.stdout.buffer
    out.write(b"ptyrun-child %d\n" % pid)
    out.flush()

    stdin_open = True
    status = None
    while True:
        if status is None:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
        fds = [master, wake_r] + ([0] if stdin_open else [])
        # Once the command has exited, only drain what is already buffered.
        timeout = 0 if status is not None else None
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if data:
                out.write(data)
                out.flush()
            elif status is not None:
                break
            else:
                # Every slave fd is closed but the command has not been
                # reaped yet: wait for it.
                status = os.waitpid(pid, 0)[1]
                break
        elif status is not None and not ready:
            break
        if stdin_open and 0 in ready:
            data = os.read(0, 65536)
            if data:
                try:
                    os.write(master, data)
                except OSError:
                    pass
            else:
                stdin_open = False
                try:
                    eof = attrs[6][termios.VEOF]
                    os.write(master, eof if isinstance(eof, bytes) else bytes([eof]))
                except OSError:
                    pass
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
