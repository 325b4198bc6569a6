"""Synthetic patients on disk, and loading them with `manage.py import_fhir` as an operator would.

Each patient is one carebundle transaction Bundle file (about 45 resources: Patient,
Practitioner, Encounter, Condition, Observations, DiagnosticReports). Files are generated in
chunks of `CHUNK` patients, each chunk with its own carebundle seed, by two processes, and kept
under bench/.scratch/data/ so the next run at the same scale skips the generation.
"""

import math
import os
import re
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.harness import PYTHON, ROOT, SCRATCH

CHUNK = 50
RESOURCES_PER_PATIENT = 44.8  # carebundle's average, measured
DATA = SCRATCH / "data"
# Seeds of the files that are not part of the stored data set.
WRITE_SEED = 900_000
IMPORT_SEED = 910_000
# Patients in each bulk import measured: about 9,000 resources, so that starting the worker
# processes is not much of the time.
IMPORT_PATIENTS = 200
IMPORTED = re.compile(r"Imported (\d+) resources from \d+ files in ([\d.]+) s")


def parse_scale(text):
    """'10k' -> 10000, '1m' -> 1000000, '2500' -> 2500."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def cohort(resources, seed=1):
    """The folders of chunk files holding about `resources` resources (generated if missing)."""
    patients = max(CHUNK, math.ceil(resources / RESOURCES_PER_PATIENT))
    chunks = math.ceil(patients / CHUNK)
    folders = [DATA / f"seed{seed}" / f"chunk-{index:05d}" for index in range(chunks)]
    missing = [(f, seed + i) for i, f in enumerate(folders) if not (f / ".complete").exists()]
    if missing:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(_write_chunk, *zip(*missing, strict=True), chunksize=4))
        print(
            f"Generated {len(missing) * CHUNK} patients in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return folders


def chunk(seed, patients=CHUNK):
    """One folder of `patients` patient files, outside the stored data set."""
    folder = DATA / "extra" / f"seed{seed}-{patients}"
    if not (folder / ".complete").exists():
        _write_chunk(folder, seed, patients)
    return folder


def _write_chunk(folder, seed, patients=CHUNK):
    import carebundle

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for number, bundle in enumerate(carebundle.generate_cohort(count=patients, seed=seed)):
        (folder / f"patient-{number:03d}.json").write_text(carebundle.to_json(bundle))
    (folder / ".complete").touch()


def load(env, folders, jobs=2):
    """Import `folders` with `import_fhir --jobs`: (resources, seconds)."""
    started = time.perf_counter()
    stored, _seconds = _imported(_start_import(env, folders, jobs))
    return stored, time.perf_counter() - started


def import_rate(env, folder, jobs=2):
    """One `import_fhir --jobs` run of `folder`: resources per second, as the command reports
    it (its own timing, without the interpreter's start-up)."""
    stored, seconds = _imported(_start_import(env, [folder], jobs))
    return stored / seconds


def _start_import(env, folders, jobs):
    return subprocess.Popen(
        [str(PYTHON), "manage.py", "import_fhir", "--jobs", str(jobs), *map(str, folders)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _imported(process):
    out, err = process.communicate()
    match = IMPORTED.search(out)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"import_fhir failed ({process.returncode}):\n{out}\n{err[-2000:]}")
    return int(match.group(1)), float(match.group(2))
