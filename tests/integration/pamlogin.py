#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""A minimal login program, the way display managers do it (runs inside the sandbox, as root).

    python3 pamlogin.py SERVICE USER -- CMD [ARG...]

pam_start(SERVICE, USER), pam_open_session, then fork: the child becomes USER
(initgroups, setgid, setuid, cd $HOME, PAM environment) and execs CMD
*without* calling pam_end first (unlike su and runuser, so an fd the module
leaves open would be inherited by the user's command). The parent waits for
the child, then pam_close_session and pam_end, and exits with the child's
status (128+N when killed by signal N).

Before the child starts, the parent prints to stdout:
    pamlogin-open RC                  pam_open_session's return code
    pamlogin-fds-added JSON           fds this process gained across pam_open_session,
                                      {fd: readlink target}
    pamlogin-env JSON                 pam_getenvlist after pam_open_session
and after the child has exited:
    pamlogin-close RC                 pam_close_session's return code
"""
import ctypes
import ctypes.util
import json
import os
import pwd
import sys

PAM_SUCCESS = 0
PAM_CONV_ERR = 19


class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_char_p), ("resp_retcode", ctypes.c_int)]


CONV_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int,
                             ctypes.POINTER(ctypes.POINTER(PamMessage)),
                             ctypes.POINTER(ctypes.POINTER(PamResponse)), ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


def no_conversation(n, msgs, resp, data):
    # Session modules have nothing to ask; text messages are shown on stderr.
    for i in range(n):
        m = msgs[i].contents
        if m.msg_style in (3, 4) and m.msg:  # PAM_ERROR_MSG, PAM_TEXT_INFO
            sys.stderr.write("pam: %s\n" % m.msg.decode(errors="replace"))
            continue
        return PAM_CONV_ERR
    resp[0] = None
    return PAM_CONV_ERR if n else PAM_SUCCESS


def fds():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # the fd of the listdir itself
    return out


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[2] != "--":
        sys.stderr.write("usage: pamlogin.py SERVICE USER -- CMD [ARG...]\n")
        return 2
    service, user, cmd = args[0], args[1], args[3:]
    pw = pwd.getpwnam(user)

    libpam = ctypes.CDLL(ctypes.util.find_library("pam") or "libpam.so.0", use_errno=True)
    libpam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(PamConv),
                                 ctypes.POINTER(ctypes.c_void_p)]
    libpam.pam_open_session.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_close_session.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libpam.pam_set_item.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    libpam.pam_getenvlist.argtypes = [ctypes.c_void_p]
    libpam.pam_getenvlist.restype = ctypes.POINTER(ctypes.c_char_p)

    conv_cb = CONV_FUNC(no_conversation)
    conv = PamConv(conv_cb, None)
    pamh = ctypes.c_void_p()
    rc = libpam.pam_start(service.encode(), user.encode(), ctypes.byref(conv), ctypes.byref(pamh))
    if rc != PAM_SUCCESS:
        sys.stderr.write("pam_start: %d\n" % rc)
        return 1
    if os.isatty(0):
        tty = os.ttyname(0)
        libpam.pam_set_item(pamh, 3, ctypes.c_char_p(tty.encode()))  # PAM_TTY

    before = fds()
    rc = libpam.pam_open_session(pamh, 0)
    after = fds()
    added = {fd: t for fd, t in after.items() if before.get(fd) != t}
    env = {}
    lst = libpam.pam_getenvlist(pamh)
    if lst:
        i = 0
        while lst[i]:
            k, _, v = lst[i].decode(errors="replace").partition("=")
            env[k] = v
            i += 1
    out = sys.stdout
    out.write("pamlogin-open %d\n" % rc)
    out.write("pamlogin-fds-added %s\n" % json.dumps(added))
    out.write("pamlogin-env %s\n" % json.dumps(env))
    out.flush()
    if rc != PAM_SUCCESS:
        libpam.pam_end(pamh, rc)
        return 1

    pid = os.fork()
    if pid == 0:
        try:
            os.initgroups(pw.pw_name, pw.pw_gid)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.chdir(pw.pw_dir)
            child_env = {"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name,
                         "SHELL": pw.pw_shell, "PATH": "/usr/local/bin:/usr/bin:/bin"}
            child_env.update(env)
            os.execvpe(cmd[0], cmd, child_env)
        except OSError as e:
            os.write(2, ("pamlogin: %s: %s\n" % (cmd[0], e)).encode())
        os._exit(127)
    status = os.waitpid(pid, 0)[1]
    rc = libpam.pam_close_session(pamh, 0)
    out.write("pamlogin-close %d\n" % rc)
    out.flush()
    libpam.pam_end(pamh, rc)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
