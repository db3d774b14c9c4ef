# SPDX-License-Identifier: BSD-2-Clause
"""Every file of the project carries its license.

LICENSE holds the BSD-2-Clause text; every tracked source, script, build,
data and documentation file names it with an SPDX-License-Identifier line in
its first three lines. Only files that cannot hold a comment are exempt:
binary fuzz seeds, JSON, and the one-number s6 notification-fd file.

    /usr/bin/python3 -m pytest tests/docs
"""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAG = "SPDX-License-Identifier: BSD-2-Clause"


def exempt(path):
    return (path == "LICENSE" or path.startswith("fuzz/seeds/")
            or path.endswith(".json") or path.endswith("/notification-fd"))


def tracked_files():
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"],
                         capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_license_file_is_bsd_2_clause():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("BSD 2-Clause License")
    assert "Redistributions in binary form must reproduce" in text


def test_meson_names_the_same_license():
    assert "license: 'BSD-2-Clause'" in (REPO / "meson.build").read_text()


def test_every_file_has_an_spdx_line():
    files = tracked_files()
    assert len(files) > 50
    missing = []
    for path in files:
        if exempt(path) or not (REPO / path).is_file():
            continue
        head = (REPO / path).read_bytes()[:512].decode("utf-8", "replace")
        if TAG not in "\n".join(head.split("\n")[:3]):
            missing.append(path)
    assert not missing, "files without an SPDX line: " + ", ".join(missing)
