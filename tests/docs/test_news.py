# SPDX-License-Identifier: BSD-2-Clause
"""NEWS.md names the version meson builds.

The newest entry of NEWS.md must be meson's project version, so a release
bumped in meson.build without its NEWS entry (or the other way round) fails.

    /usr/bin/python3 -m pytest tests/docs
"""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_newest_news_entry_is_the_project_version():
    meson = (REPO / "meson.build").read_text()
    m = re.search(r"project\([^)]*\bversion:\s*'([^']+)'", meson, re.S)
    assert m, "no version in meson.build's project()"
    news = (REPO / "NEWS.md").read_text()
    entries = re.findall(r"^## (\S+)", news, re.M)
    assert entries, "NEWS.md has no '## VERSION' entry"
    assert entries[0] == m.group(1), "NEWS.md's newest entry is %s, meson.build says %s" % (
        entries[0], m.group(1))
