"""The wheel carries what a site needs: templates, static files (vendored hls.js too) and migrations,
and it builds without setuptools warnings."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.utils import require

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``python -m build`` as a release runs it: the sdist, then the wheel built from that sdist.

    Returns ``(wheel path, everything the build printed)``.
    """
    try:
        import build  # noqa: F401
    except ImportError:
        build = None
    require(build is not None, "the 'build' package (pip install build)")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = out.glob("wagtail_livestream-*.whl")
    return path, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(built):
    return built[0]


@pytest.mark.slow
def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "wagtail_live/templates/wagtail_live/admin/go_live.html" in names
    assert "wagtail_live/static/wagtail_live/js/golive-screen.js" in names
    assert "wagtail_live/migrations/0001_initial.py" in names
    assert "wagtail_live/static/wagtail_live/vendor/hls.min.js" in names
    # Every template, static file and migration in the source tree is in the wheel.
    package = ROOT / "wagtail_live"
    for folder, pattern in (("templates", "*"), ("static", "*"), ("migrations", "*.py")):
        for path in (package / folder).rglob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                assert str(path.relative_to(ROOT)) in names, f"{path} missing from the wheel"
    # Tests, the example site and the repo's tooling are not shipped.
    assert not any(name.startswith(("tests/", "example_site/", "benchmarks/")) for name in names)


@pytest.mark.slow
def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
    assert "Name: wagtail-livestream" in metadata
    assert "Requires-Python: >=3.11" in metadata
    for requirement in (
        "wagtail",
        "wagtailmedia",
        "channels",
        "daphne",
        "huey",
        "imageio-ffmpeg",
        "av",
    ):
        assert f"Requires-Dist: {requirement}" in metadata


@pytest.mark.slow
def test_build_prints_no_setuptools_warnings(built):
    """setuptools frames each of its warnings (deprecations, packages missing from the
    configuration) in a ``!!`` banner; a clean metadata prints none."""
    _wheel, output = built
    banners = [line for line in output.splitlines() if line.strip() == "!!"]
    deprecations = re.findall(r"(?im)^.*deprecat.*$", output)
    assert not banners and not deprecations, output[-4000:]


@pytest.mark.slow
def test_static_files_collect_under_manifest_storage(tmp_path, settings):
    """Sites serving static files with WhiteNoise or ManifestStaticFilesStorage hash every file
    and every reference in it at collectstatic; a reference to a file we do not ship (a
    vendored bundle's source map) would fail their deploy."""
    from django.core.management import call_command

    settings.STATIC_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "wagtail_live/vendor/hls.min.js" in manifest
