"""The committed hls.js build must be the one package.json pins (nothing edited by hand)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "wagtail_live" / "static" / "wagtail_live" / "vendor"


def pinned_hlsjs_version():
    package = json.loads((ROOT / "package.json").read_text())
    return package["devDependencies"]["hls.js"]


def locked_hlsjs_version():
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"]["node_modules/hls.js"]["version"]


def test_package_json_pins_an_exact_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned_hlsjs_version())
    assert locked_hlsjs_version() == pinned_hlsjs_version()


def test_built_hlsjs_matches_the_pinned_version():
    built = (VENDOR / "hls.min.js").read_text()
    # hls.js embeds its own version as a string literal in the minified bundle.
    embedded = re.findall(r'="(\d+\.\d+\.\d+)"', built)
    assert pinned_hlsjs_version() in embedded
    assert (VENDOR / "hls.js.version").read_text().strip() == pinned_hlsjs_version()


def test_hlsjs_license_ships_with_it():
    assert "Apache" in (VENDOR / "hls.js.LICENSE").read_text()
