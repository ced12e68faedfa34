#!/usr/bin/env python3
"""The wheels bench/gpu_check.py needs on a GPU box that reaches no package index, one folder per
profile, each checked to travel with the working tree within the box's limit.

    python bench/gpu_wheels.py [PROFILE ...] [--dest .whl] [--limit-mib 64]

A profile's wheels are found, not listed: the profile's imports run here (in this environment,
where asrctl and its plugins are installed), and every distribution they load that the box lacks
(bench/gpu_box_packages.txt: what its Python has) is downloaded for Python 3.12 on manylinux
x86_64 at the version installed here; asrctl and the bundled plugins are built as wheels. On the
box: `pip install --no-index --no-deps --target /tmp/site .whl/PROFILE/*.whl` and
PYTHONPATH=/tmp/site (bench/gpu_check.py --help shows the whole command).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

BENCH = Path(__file__).parent
REPO = BENCH.parent
BOX = BENCH / "gpu_box_packages.txt"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]

# What each profile imports on the box (the libraries too: asrctl imports them where it uses them);
# what it builds from this repository.
COMMON = ("import asrctl.cli, asrctl.api, asrctl.data.audio, asrctl.score.normalizers, jiwer, "
          "whisper_normalizer.english, whisper_normalizer.basic; ")
PROFILES = {
    "hf": (COMMON + "import asrctl_hf.whisper, asrctl_hf.ctc, asrctl_hf.training.run, asrctl.default_plugins.silero, "
           "silero_vad, peft", [".", "plugins/asrctl-hf"]),
    "faster-whisper": (COMMON + "import asrctl_faster_whisper.backend, faster_whisper, ctranslate2, asrctl_hf.whisper",
                       [".", "plugins/asrctl-hf", "plugins/asrctl-faster-whisper"]),
    "nemo": (COMMON + "import asrctl_nemo.backend, asrctl_nemo.training; "
             "from nemo.collections.asr.models import ASRModel, EncDecMultiTaskModel", [".", "plugins/asrctl-nemo"]),
}
# Carried at this environment's version though the box has its own, which the profile cannot use:
# NeMo 3.0 asks for lightning <= 2.4.
OWN_VERSION = {"nemo": ["lightning"]}
# PyAV (34 MB) is imported by faster-whisper when it loads, and used only to decode files, which
# asrctl does itself: bench/gpu_check.py gives it an empty module there instead of the wheel.
LEFT_BEHIND = {"av"}
# What transformers imports where it is installed, and the box does without; carried, it would change
# what the box's transformers does (`datasets` in the Trainer, `kernels` for layers from the Hub).
# NeMo imports `datasets` itself.
OPTIONAL = {"kernels", "datasets", "dill", "multiprocess"}
NEEDED_OPTIONAL = {"nemo": {"datasets", "dill", "multiprocess"}}

PROBE = r"""
import importlib.metadata as md, json, sys
exec(sys.argv[1])
owners = md.packages_distributions()
names = {dist for module in list(sys.modules) for dist in owners.get(module.split(".")[0], [])}
print(json.dumps(sorted({md.distribution(n).metadata["Name"] + "==" + md.distribution(n).version for n in names})))
"""


def normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def box_packages() -> set[str]:
    names = (line.split("#")[0].strip() for line in BOX.read_text().splitlines())
    return {normalized(name) for name in names if name}


def needed(profile: str) -> list[str]:
    """name==version of the distributions the profile's imports load that the box lacks."""
    imports, _ = PROFILES[profile]
    probe = subprocess.run([sys.executable, "-c", PROBE, imports], capture_output=True, text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"profile {profile}: its imports fail here ({last}); install what it needs first "
                         "(asrctl install ./plugins/asrctl-faster-whisper for faster-whisper)")
    loaded = json.loads(probe.stdout)
    ours = {"asrctl", "asrctl-hf", "asrctl-nemo", "asrctl-faster-whisper"}
    box = box_packages()
    own = [f"{name}=={version(name)}" for name in OWN_VERSION.get(profile, [])]
    skip = box | ours | LEFT_BEHIND | (OPTIONAL - NEEDED_OPTIONAL.get(profile, set()))
    return [spec for spec in loaded if normalized(spec.split("==")[0]) not in skip] + own


def download(specs: list[str], dest: Path) -> None:
    """Each spec's wheel for the box; one published only as source is built here, if pure Python."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    for spec in specs:
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                  "--python-version", "3.12", "--implementation", "cp", *platforms, "--platform",
                                  "any", "-d", str(dest), spec], capture_output=True, text=True)
        if fetched.returncode == 0:
            continue
        before = set(dest.glob("*.whl"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), spec], check=True,
                       capture_output=True)
        built = set(dest.glob("*.whl")) - before
        if not all(wheel.name.endswith("-py3-none-any.whl") for wheel in built):
            raise SystemExit(f"{spec}: no wheel for Python 3.12 on manylinux x86_64, and its source is not pure Python")


def build(sources: list[str], dest: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest),
                    *(str(REPO / source) for source in sources)], check=True)


def working_tree_bytes() -> int:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.split(b"\0")
    return sum((REPO / f.decode()).stat().st_size for f in files if f and (REPO / f.decode()).is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="*", default=list(PROFILES), metavar="PROFILE",
                        help=f"one or more of {', '.join(PROFILES)} [default: all]")
    parser.add_argument("--dest", type=Path, default=REPO / ".whl", help="wheels go to DEST/PROFILE")
    parser.add_argument("--limit-mib", type=float, default=64, help="what travels with one run, working tree included")
    args = parser.parse_args()
    unknown = sorted(set(args.profiles) - set(PROFILES))
    if unknown:
        parser.error(f"unknown profile {unknown[0]}: choose from {', '.join(PROFILES)}")

    tree = working_tree_bytes()
    over = False
    print(f"working tree {tree / 2**20:.1f} MiB; limit {args.limit_mib:g} MiB a run")
    for profile in args.profiles:
        dest = args.dest / profile
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.whl"):
            old.unlink()
        specs = needed(profile)
        download(specs, dest)
        build(PROFILES[profile][1], dest)
        size = sum(wheel.stat().st_size for wheel in dest.glob("*.whl"))
        fits = (size + tree) / 2**20 <= args.limit_mib
        over |= not fits
        print(f"{profile}: {len(list(dest.glob('*.whl')))} wheels, {size / 2**20:.1f} MiB "
              f"(+ working tree {(size + tree) / 2**20:.1f} MiB): {'fits' if fits else 'TOO LARGE'}; "
              f"from the index: {', '.join(specs) or 'none'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
