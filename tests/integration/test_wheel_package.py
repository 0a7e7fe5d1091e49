"""A built wheel, installed outside the source tree, serves the pensioner page at ``/``."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from fastapi.testclient import TestClient
import server.app as sa
from lifecert.config import Settings
assert not sa.__file__.startswith(sys.argv[1]), f"imported from the source tree: {sa.__file__}"
page = sa.mobile_web_dir()
app = sa.create_app(Settings(env="test", data_dir=sys.argv[2]))
with TestClient(app) as c:
    r = c.get("/")
    print(page, r.status_code, "<html" in r.text.lower())
"""


def test_given_a_built_wheel_when_installed_elsewhere_then_it_serves_the_pensioner_page(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ next to the sources it builds.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "var", "__pycache__", "*.egg-info", ".*_cache", "node_modules"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, timeout=600, capture_output=True)
    wheel = next((tmp_path / "dist").glob("lifecert-*.whl"))
    shipped = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if "/mobile-web/" in n}
    expected = {p.name for p in (ROOT / "mobile-web").iterdir() if p.is_file() and p.name != "README.md"}
    assert expected <= shipped, f"mobile-web files missing from the wheel: {expected - shipped}"

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    target_site = next(env_dir.glob("lib/python*/site-packages"))
    # Dependencies come from the test environment's site-packages (a .pth there is a plain path,
    # so its editable-install hook does not run and the wheel's copy of lifecert is the one imported).
    (target_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    out = subprocess.run([str(py), "-c", PROBE, str(ROOT), str(tmp_path / "data")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    page, status, is_html = out.stdout.split()[-3:]
    assert str(env_dir) in page and status == "200" and is_html == "True", out.stdout
