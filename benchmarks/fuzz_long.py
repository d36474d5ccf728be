"""The long fuzz run: 20,000 inputs per parser (the CI suite runs 2,000).

Runs the generators and checks of tests/test_fuzz_parsers.py (safetensors, sj.load, .keras,
Keras model configs, .h5, IDX, the IMDB archive reader) and prints, per parser, how many
parses were made and how each ended: loaded, or refused with the parser's own error type
(safetensors parses each input twice: as bytes and as a file).
Any other exception stops the run with hypothesis's minimal failing input.

    python benchmarks/fuzz_long.py                 # 20,000 per parser
    python benchmarks/fuzz_long.py --examples 5000 --only safetensors idx
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per parser")
    parser.add_argument("--only", nargs="*", help="parsers to run (default: all)")
    args = parser.parse_args()
    os.environ["SHENJING_FUZZ_EXAMPLES"] = str(args.examples)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import test_fuzz_parsers as fuzz  # reads SHENJING_FUZZ_EXAMPLES at import

    from shenjing.io import keras_files

    work = Path(tempfile.mkdtemp(prefix="shenjing-fuzz-"))
    os.environ["SHENJING_DATA"] = str(work / "cache")
    targets = {
        "safetensors": fuzz.test_fuzz_safetensors,
        "sj.load": fuzz.test_fuzz_sj_load,
        ".keras": fuzz.test_fuzz_keras_archive,
        "Keras config": fuzz.test_fuzz_keras_model_configs,
        ".h5": None,
        "IDX": fuzz.test_fuzz_idx,
        "IMDB archive": fuzz.test_fuzz_imdb_archive,
    }
    chosen = [name for name in targets
              if not args.only or name.lower().strip(".") in {o.lower().strip(".")
                                                             for o in args.only}]
    print(f"{'parser':<14} {'parses':>7} {'seconds':>8}  outcomes")
    try:
        _run_all(fuzz, keras_files, targets, chosen, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_all(fuzz, keras_files, targets: dict, chosen: list[str], work: Path) -> None:
    keras_files_probe = keras_files._probe
    for name in chosen:
        folder = work / name.replace(" ", "_").strip(".")
        folder.mkdir()
        start = time.perf_counter()
        if name == ".h5":
            keras_files._probe = lambda h5py, path: None  # as in the test: libhdf5-made files
            try:
                _run_h5(fuzz, folder)
            finally:
                keras_files._probe = keras_files_probe
        else:
            targets[name](folder)
        seconds = time.perf_counter() - start
        counts = fuzz.COUNTS[name]
        outcomes = ", ".join(f"{kind} {n}" for kind, n in counts.most_common())
        print(f"{name:<14} {sum(counts.values()):>7} {seconds:>8.1f}  {outcomes}", flush=True)


def _run_h5(fuzz, folder: Path) -> None:
    class _Patch:  # the test takes pytest's monkeypatch; the probe is already patched here
        @staticmethod
        def setattr(*_args) -> None:
            pass

    fuzz.test_fuzz_h5(folder, _Patch())


if __name__ == "__main__":
    main()
