"""Build the Blender extension: ``python build.py [--bundle DIR] [--fast-bundle DIR | --no-weights] [-o dist]``.

Assembles a staging folder laid out as Blender wants an add-on extension — the ``prnet_blender``
package's files at the root, ``blender_manifest.toml`` beside them, the engine vendored as
``engine/`` (the runtime; the top-level ``training/`` package is never shipped), the model bundle as
``engine/_weights/default`` (where ``engine.bundle.default_bundle_path`` looks first) and the fast
model, when there is one, as ``engine/_weights/fast`` (``engine.bundle.fast_bundle_path``) — then runs
Blender's own ``extension build`` and ``extension validate`` on it. Blender's extension tool ships
in the bpy wheel (``bpy/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py``) and runs under
plain Python, so no Blender binary is needed; ``--blender PATH`` uses ``PATH --command extension``
instead. Output: ``dist/prnet_blender-<version>.zip``.

Licences: the code is GPL-3.0-or-later; a model bundle carries its own licence (bundle.json
``licence``; the shipped model's is research / non-commercial, from its training data). When a
bundle ships, the staged manifest lists that licence beside the code's (:func:`manifest_with_model`),
so the artist sees it in Blender's extension list; ``--no-weights`` builds a zip whose only licence is
the code's (no weights, and no file derived from the research data), and the artist selects a bundle
in the add-on's preferences.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
MANIFEST = "blender_manifest.toml"
ADDON_DIR = REPO / "prnet_blender"
ENGINE_DIR = REPO / "engine"
DEFAULT_BUNDLE = REPO / "weights" / "default"
VENDORED_BUNDLE = Path("engine") / "_weights" / "default"
FAST_BUNDLE = REPO / "weights" / "fast"
VENDORED_FAST_BUNDLE = Path("engine") / "_weights" / "fast"
DEV_FILES = ("__pycache__", "*.pyc", ".*", "ruff.toml")  # development files, never shipped
ENGINE_EXCLUDE = ("_weights", *DEV_FILES)
BUNDLE_EXCLUDE = ("*.tmp", ".*", "__pycache__")
MODEL_LICENCE_REF = "LicenseRef-research-non-commercial"  # the shipped weights' licence, as Blender lists it
MODEL_YEAR = "2026"  # copyright line of the shipped weights (Blender wants a year first)
EXT_TOOL = Path("scripts") / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
EXT_TAGS = Path("scripts") / "modules" / "_bpy_internal" / "extensions" / "tags.py"


def find_extension_tool() -> tuple[Path, Path]:
    """(blender_ext.py, tags.py) from the installed bpy wheel; SystemExit if bpy is not installed."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build.py needs the bpy package (pip install bpy) or --blender PATH")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    for version_dir in sorted(bpy_dir.iterdir(), reverse=True):
        if (version_dir / EXT_TOOL).is_file():
            return version_dir / EXT_TOOL, version_dir / EXT_TAGS
    raise SystemExit(f"no Blender extension tool ({EXT_TOOL}) inside {bpy_dir}")


def manifest_version() -> str:
    """The manifest's top-level ``version`` (read without tomllib, which Python 3.10 lacks)."""
    found = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / MANIFEST).read_text(encoding="utf-8"), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{MANIFEST} has no version")
    return found.group(1)


def stage(staging: Path, bundle: Path | None, fast_bundle: Path | None = None) -> None:
    """Lay the extension's files out in ``staging`` (``fast_bundle`` ships only beside a ``bundle``)."""
    shutil.copytree(ADDON_DIR, staging, ignore=shutil.ignore_patterns(*DEV_FILES), dirs_exist_ok=True)
    manifest = (REPO / MANIFEST).read_text(encoding="utf-8")
    shutil.copytree(ENGINE_DIR, staging / "engine", ignore=shutil.ignore_patterns(*ENGINE_EXCLUDE))
    if bundle is not None:
        if not (bundle / "bundle.json").is_file():
            raise SystemExit(
                f"no model bundle at {bundle} (bundle.json missing): train or import one (weights/README.md), "
                "pass --bundle DIR, or --no-weights to ship without a model"
            )
        shutil.copytree(bundle, staging / VENDORED_BUNDLE, ignore=shutil.ignore_patterns(*BUNDLE_EXCLUDE))
        licence = stated_licence(bundle)
        if fast_bundle is not None:
            fast_licence = stated_licence(fast_bundle)
            if fast_licence != licence:
                raise SystemExit(f"the fast model's licence ({fast_licence!r}) is not the model's ({licence!r})")
            shutil.copytree(fast_bundle, staging / VENDORED_FAST_BUNDLE, ignore=shutil.ignore_patterns(*BUNDLE_EXCLUDE))
        manifest = manifest_with_model(manifest, licence)
    (staging / MANIFEST).write_text(manifest, encoding="utf-8")


def stated_licence(bundle: Path) -> str:
    """The licence a bundle folder's bundle.json states ("" when it states none)."""
    return str(json.loads((bundle / "bundle.json").read_text(encoding="utf-8")).get("licence", ""))


def manifest_with_model(manifest: str, licence: str) -> str:
    """The manifest text with the shipped model's licence added to ``license`` (as an SPDX LicenseRef:
    Blender lists it beside the code's) and named in ``copyright``; a bundle without a stated
    licence is refused, since an artist could not tell what they may do with it."""
    if not licence.strip():
        raise SystemExit("the model bundle states no licence (bundle.json 'licence'): refusing to ship it")
    ref = MODEL_LICENCE_REF if "non-commercial" in licence else "LicenseRef-model-weights"
    found = re.search(r"^license = \[(.*)\]$", manifest, re.MULTILINE)
    if found is None:
        raise SystemExit(f"{MANIFEST} has no one-line license list")
    manifest = manifest.replace(found.group(0), f'license = [{found.group(1)}, "{ref}"]')
    summary = licence.split(" (")[0].replace('"', "'")
    return re.sub(
        r"^copyright = \[(.*)\]$",
        lambda m: f'copyright = [{m.group(1)}, "{MODEL_YEAR} model weights: {summary}"]',
        manifest,
        count=1,
        flags=re.MULTILINE,
    )


def extension_command(blender: str | None) -> tuple[list[str], list[str]]:
    """Command prefix running Blender's extension tool, and the extra arguments its build needs."""
    if blender:
        return [blender, "--factory-startup", "--command", "extension"], []
    tool, tags = find_extension_tool()
    return [sys.executable, str(tool)], [f"--valid-tags={tags}"]


def build(*, output: Path, bundle: Path | None, fast_bundle: Path | None = None, blender: str | None = None) -> Path:
    """Stage, build and validate; the path of the zip."""
    version = manifest_version()
    output.mkdir(parents=True, exist_ok=True)
    zip_path = output / f"prnet_blender-{version}.zip"
    command, tags = extension_command(blender)
    with tempfile.TemporaryDirectory(prefix="prnet_blender_build_") as tmp:
        staging = Path(tmp) / "prnet_blender"
        stage(staging, bundle, fast_bundle)
        zip_path.unlink(missing_ok=True)
        _run([*command, "build", f"--source-dir={staging}", f"--output-filepath={zip_path}", *tags])
    _run([*command, "validate", *tags, str(zip_path)])
    return zip_path


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    out = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-3:])} failed:\n{out}")
    if out:
        print(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "dist", help="folder for the zip")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--bundle", type=Path, default=DEFAULT_BUNDLE, help="model bundle to ship (default weights/default)"
    )
    which.add_argument(
        "--no-weights",
        action="store_true",
        help="ship no model: the zip's only licence is the code's GPL (set a bundle in the add-on preferences)",
    )
    parser.add_argument(
        "--fast-bundle",
        type=Path,
        default=FAST_BUNDLE if (FAST_BUNDLE / "bundle.json").is_file() else None,
        help="fast model bundle to ship beside it (default weights/fast when present)",
    )
    parser.add_argument("--blender", help="a Blender executable to build with instead of the bpy wheel's tool")
    args = parser.parse_args(argv)
    fast = None if args.no_weights else args.fast_bundle
    if fast is not None and not (fast / "bundle.json").is_file():
        parser.error(f"no model bundle at {fast} (bundle.json missing)")
    zip_path = build(
        output=args.output, bundle=None if args.no_weights else args.bundle, fast_bundle=fast, blender=args.blender
    )
    print(f"built {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
