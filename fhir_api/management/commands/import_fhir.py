"""manage.py import_fhir PATH [PATH...]: load FHIR JSON, Bundles and NDJSON into the store.

Everything goes through `bundles.process_bundle`, the code behind `POST /fhir`, so an import
validates, indexes and versions resources exactly as the API does:

- a transaction Bundle is one transaction: if any entry fails, nothing of that file is stored;
- a batch Bundle runs as a batch: failing entries are reported, the others stored;
- a collection or searchset Bundle has its resources stored under their own ids
  (PUT Type/id; a resource without an id gets a new one), batch by batch;
- any other Bundle (document, message, history) or resource is stored as that one resource;
- an NDJSON file (one resource per line) is stored in batches of `--batch-size` lines. A bad
  line is reported with its line number and skipped; the other lines of its batch are stored.

Folders are walked recursively in sorted order, taking *.json and *.ndjson files. Failures are
reported as `file: position: message`, and the command exits non-zero if anything failed.

`--jobs N` loads N files at a time, each in a process of its own: a file is still one unit
(a transaction Bundle all or nothing), but files are not stored in order, so a file should not
rely on another (a Bundle's references to resources of another file are not checked anyway).
"""

import functools
import multiprocessing
import sys
import time
from pathlib import Path

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from tqdm import tqdm

from fhir_api.bundles import process_bundle
from fhir_api.exceptions import FhirError
from fhir_api.policy import FULL_ACCESS

FILE_SUFFIXES = (".json", ".ndjson")
STORED_AS_ENTRIES = ("collection", "searchset")
EXECUTED = ("transaction", "batch")


class Command(BaseCommand):
    help = "Import FHIR resources from JSON, Bundle and NDJSON files or folders of them."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="files or folders")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="resources stored per database transaction for NDJSON and collections",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="files loaded at a time, each by a process of its own (default 1)",
        )

    def handle(self, *args, paths, batch_size, jobs, **options):
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more")
        files = list(find_files(paths))
        started = time.perf_counter()
        with tqdm(total=sum(map(count_resources, files)), unit="res", disable=None) as progress:
            self.progress = progress
            stored, failed = load_files(files, batch_size, jobs, self._report)
        seconds = time.perf_counter() - started
        rate = stored / seconds if seconds else 0.0
        self.stdout.write(
            f"Imported {stored} resources from {len(files)} files in {seconds:.2f} s "
            f"({rate:.0f} resources/s); {failed} failed."
        )
        if failed:
            raise CommandError(f"{failed} resources could not be imported (see above)")

    def _report(self, message, count):
        """Called after each unit of work: a failure message and/or progress."""
        if message:
            with tqdm.external_write_mode(file=sys.stderr):
                self.stderr.write(message)
        self.progress.update(count)


def load_files(files, batch_size, jobs, report):
    """Load `files`, in this process or `jobs` at a time in forked ones: (stored, failed).

    `report(message, count)` hears of every failure and every `count` resources dealt with,
    as they happen in this process, and file by file from the others.
    """
    if jobs == 1 or len(files) < 2:
        importer = Importer(settings.FHIR["BASE_URL"], batch_size, report)
        for path in files:
            importer.load_file(path)
        return importer.stored, importer.failed
    stored = failed = 0
    load = functools.partial(load_file, batch_size=batch_size)
    connections.close_all()  # a forked process must open a connection of its own
    with multiprocessing.get_context("fork").Pool(min(jobs, len(files))) as pool:
        for importer in pool.imap_unordered(load, files):
            stored += importer.stored
            failed += importer.failed
            for message, count in importer.reports:
                report(message, count)
    return stored, failed


def load_file(path, batch_size):
    """Load one file in a forked process: the Importer holds its counts and reports."""
    importer = Importer(settings.FHIR["BASE_URL"], batch_size)
    importer.load_file(path)
    return importer


def find_files(paths):
    """The files to load: each path given, or the JSON and NDJSON files under a folder, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES
            )
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"{path} does not exist")


def count_resources(path):
    """How many resources a file holds, for the progress bar (cheap next to storing them)."""
    data = path.read_bytes()
    if path.suffix.lower() == ".ndjson":
        return sum(1 for line in data.splitlines() if line.strip())
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return 1
    if _is_bundle(parsed) and parsed.get("type") in EXECUTED + STORED_AS_ENTRIES:
        return len(parsed.get("entry") or [])
    return 1


class Importer:
    """Loads files one by one, counting what was stored and what failed.

    `report(message, count)` is told about every failure (message) and every `count`
    resources dealt with, stored or not. Without it they are kept in `reports`, to be told
    by the process that forked this one.
    """

    def __init__(self, base_url, batch_size, report=None):
        self.base_url = base_url
        self.batch_size = batch_size
        self.stored = 0
        self.failed = 0
        self.reports = []
        self._tell = report

    def report(self, message, count):
        if self._tell is None:
            self.reports.append((message, count))
        else:
            self._tell(message, count)

    def load_file(self, path):
        if path.suffix.lower() == ".ndjson":
            self.load_ndjson(path)
            return
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            self._fail(f"{path}: not valid JSON: {error}")
            return
        if _is_bundle(data) and data.get("type") in EXECUTED:
            self.load_bundle(path, data)
        elif _is_bundle(data) and data.get("type") in STORED_AS_ENTRIES:
            entries = data.get("entry") or []
            items = [(f"entry[{i}]", entry.get("resource")) for i, entry in enumerate(entries)]
            self.store_resources(path, items)
        else:
            self.store_resources(path, [(None, data)])

    def load_ndjson(self, path):
        items = []
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    items.append((f"line {number}", orjson.loads(line)))
                except orjson.JSONDecodeError as error:
                    self._fail(f"{path}: line {number}: not valid JSON: {error}")
                if len(items) >= self.batch_size:
                    self.store_resources(path, items)
                    items = []
        self.store_resources(path, items)

    def load_bundle(self, path, data):
        """A transaction or batch, run as the API would run it."""
        count = len(data.get("entry") or [])
        try:
            response = process_bundle(data, base_url=self.base_url, policy=FULL_ACCESS)
        except FhirError as error:
            self.failed += count
            self.report(f"{path}: {error.diagnostics} (nothing from this file was stored)", count)
            return
        positions = [f"entry[{i}]" for i in range(count)]
        self._count_responses(path, positions, response)

    def store_resources(self, path, items):
        """Store (position, resource) pairs under their own ids, `batch_size` per transaction."""
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            positions, entries = [], []
            for position, resource in chunk:
                entry = _store_entry(resource)
                if entry is None:
                    self._fail(_location(path, position) + "not a FHIR resource (no resourceType)")
                else:
                    positions.append(position)
                    entries.append(entry)
            if entries:
                bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
                self._count_responses(
                    path,
                    positions,
                    process_bundle(bundle, base_url=self.base_url, policy=FULL_ACCESS),
                )

    def _count_responses(self, path, positions, response):
        messages = []
        for position, entry in zip(positions, response.get("entry", []), strict=True):
            answer = entry["response"]
            if answer["status"][:1] == "2":
                self.stored += 1
                continue
            self.failed += 1
            issues = answer.get("outcome", {}).get("issue", [{}])
            detail = issues[0].get("diagnostics", answer["status"])
            messages.append(f"{_location(path, position)}{detail}")
        self.report("\n".join(messages), len(positions))

    def _fail(self, message):
        self.failed += 1
        self.report(message, 1)


def _store_entry(resource):
    """A batch entry that stores `resource` under its id (PUT), or under a new one (POST)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return None
    resource_type = resource["resourceType"]
    fhir_id = resource.get("id")
    if isinstance(fhir_id, str) and fhir_id:
        return {
            "resource": resource,
            "request": {"method": "PUT", "url": f"{resource_type}/{fhir_id}"},
        }
    return {"resource": resource, "request": {"method": "POST", "url": resource_type}}


def _is_bundle(data):
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def _location(path, position):
    return f"{path}: {position}: " if position else f"{path}: "
