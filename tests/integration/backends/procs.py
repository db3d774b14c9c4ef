#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Every process of the sandbox as JSON (run inside it by backend_fixtures.py).

One object per process: pid ppid sid state uids [real, effective, saved, fs]
gids groups sigign (hex mask) argv. Processes that vanish while being read are
left out.
"""
import json
import os


def read(pid):
    p = {"pid": pid}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            value = value.split()
            if key == "PPid":
                p["ppid"] = int(value[0])
            elif key == "State":
                p["state"] = value[0]
            elif key == "Uid":
                p["uids"] = [int(v) for v in value]
            elif key == "Gid":
                p["gids"] = [int(v) for v in value]
            elif key == "Groups":
                p["groups"] = sorted(int(v) for v in value)
            elif key == "SigIgn":
                p["sigign"] = value[0]
    with open("/proc/%d/stat" % pid) as f:
        # pid (comm) state ppid pgrp session ...: comm may hold spaces
        p["sid"] = int(f.read().rsplit(")", 1)[1].split()[3])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        p["argv"] = [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    return p


def main():
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            out.append(read(int(name)))
        except (OSError, IndexError, ValueError):
            pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
