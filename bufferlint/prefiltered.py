"""The prefiltered lint: parses only the statements that can change a finding
(bufferlint.prefilter), plus whatever the class model asks for, in a pool of workers and
once (the caches); the tests hold its findings to the whole-file pipeline's."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bufferlint import conventions, prefilter, runcache, trees
from bufferlint.cache import Cache, Stat, location, stat_of
from bufferlint.checking import error_finding
from bufferlint.choosing import Chooser
from bufferlint.engine import Result, Settings
from bufferlint.jobs import Job, Key, Outcome, holds, wanted, work
from bufferlint.ondemand import OnDemand
from bufferlint.pool import LintWorkers
from bufferlint.reading import Scan, file_size
from bufferlint.runfiles import RunFiles
from bufferlint.sources import SourceFile
from bufferlint.whole import findings_for_classes, suppress

if TYPE_CHECKING:
    from bufferlint.engine import Finish
    from bufferlint.facts import ParseFailure
    from bufferlint.model import Project


class PrefilteredRun:
    """One prefiltered lint. Read and index the linted files (and, following their class
    headers' imports, the files outside them that hold ancestors); choose the statements
    that may report and those that define their ancestors; parse them in a pool; let the
    class model pull in anything else it looks up (bufferlint.ondemand)."""

    def __init__(
        self,
        paths: Sequence[str],
        sources: Sequence[SourceFile],
        settings: Settings,
        finish: Finish | None = None,
        finish_key: str = "",
    ) -> None:
        self.paths = list(paths)
        self.sources = list(sources)
        self.settings = settings
        self.finish = finish
        self.finish_key = finish_key
        self.files = RunFiles(self.sources, Cache(location()) if settings.cache else None)
        self.project: Project | None = None

    def result(self) -> Result:
        """The findings (stored for `runcache.answered` when the cache is on)."""
        linted = {s.path: stat_of(s.path) for s in self.sources}
        start = time.time_ns()
        cache = self.files.cache
        if cache is not None:
            cache.prepare()  # now: creating the folder changes its parent's mtime
        # A run that plans fixes keeps the trees it parses for the fixer (bufferlint.trees).
        keep = self.finish is not None
        with (
            trees.keeping() if keep else contextlib.nullcontext(),
            LintWorkers(self.settings.jobs, keep) as workers,
        ):
            self._scan(linted, workers)
            chooser = Chooser(self.files)
            chooser.follow(self.sources)
            self._run(chooser.choose(), workers)
            result = self._findings()
            if self.finish is not None:
                assert self.project is not None
                self.finish(result, self.project, self._splits(), workers)
        if cache is not None:
            key = runcache.run_key(self.paths, self.settings, self.finish_key)
            path_filter = self.settings.path_filter()
            runcache.store(self.files, linted, start, key, self.paths, path_filter, result)
        return result

    def _splits(self) -> dict[str, prefilter.FileIndex]:
        """The split indexes of the texts read, by digest: a fixer reading one of those
        texts again need not split it again."""
        return {
            scan.digest: scan.index
            for scan in self.files.scans.values()
            if scan.digest and scan.index is not None and scan.index.starts is not None
        }

    def _scan(self, linted: dict[str, Stat | None], workers: LintWorkers) -> None:
        """Reads and indexes what changed since the cached scan."""
        jobs = []
        for path, stat in linted.items():
            record = self.files.known.get(path)
            if (
                isinstance(record, Scan)
                and stat is not None
                and record.stat == stat
                and (record.checked or record.error)
            ):
                self.files.absorb(Outcome(path, record))
            else:
                jobs.append(Job(path, check=True))
        self._run(jobs, workers)

    def _run(self, jobs: list[Job], workers: LintWorkers) -> None:
        """Runs the jobs that have work left, in the pool when they are worth it."""
        needed = [job for job in jobs if not self._done(job)]
        sizes = [file_size(job.path) for job in needed]
        for worker, outcome in workers.run(work, needed, sizes):
            if worker is not None and outcome.fresh:
                workers.placed[outcome.path] = worker
            self.files.absorb(outcome)

    def _done(self, job: Job) -> bool:
        """Whether the job has nothing left to do: already scanned, and parsed as far as
        it asks (perhaps by the cache)."""
        if job.scan is None:
            return False
        index = job.scan.index
        if job.key is None or index is None:
            return True
        if index.starts is None:
            return False
        statements, parse = wanted(job, index)
        parsed = self.files.parsed.get(job.key) or self.files.cached(job.key)
        if not holds(parsed, parse, job.whole or index.odd):
            return False
        assert parsed is not None
        self.files.absorb(Outcome(job.path, job.scan, job.key, parsed, tuple(statements)))
        return True

    def _findings(self) -> Result:
        """The findings: the model starts from the files that may report and pulls in
        whatever else it looks up."""
        from bufferlint.facts import FileFacts

        files = self.files
        result = Result(files=len(self.sources))
        model = OnDemand(files)
        project = self.project = model.project
        candidates = []
        for source in self.sources:
            key = files.keys[source.path]
            parsed = files.parsed.get(key)
            if parsed is None:
                continue
            if not (files.asked.get(key) or files.whole(key) or parsed.whole):
                index = files.scans[source.path].index
                if index is not None and index.dispatch:  # its models may judge others
                    if conventions.dispatching_template(source.path):
                        continue
                    project.add(model.facts(key))
                continue
            facts = model.facts(key)
            if facts.error is not None:
                continue
            project.add(facts)
            if parsed.whole is not None:
                classes = list(parsed.whole)
            else:
                classes = [c for n in sorted(files.asked[key]) for c in parsed.statements[n]]
            candidates.append((source, facts, classes))
        findings = findings_for_classes(project, candidates, self.settings)
        for source in self.sources:
            error = self._error(files.keys[source.path])
            if error is not None:
                facts = FileFacts(path=source.path, module=source.module, error=error)
                result.findings.append(error_finding(source, facts))
        result.findings.extend(findings)
        # Only files with findings or directives have anything to suppress or report.
        reported = {finding.path for finding in result.findings}
        scans = files.scans
        sources = [s for s in self.sources if s.path in reported or scans[s.path].directives]
        plain = {s.path for s in sources if not scans[s.path].directives}
        return suppress(result, sources, self.settings, plain=plain)

    def _error(self, key: Key) -> ParseFailure | None:
        from bufferlint.facts import ParseFailure

        scan = self.files.scans.get(key[0])
        if scan is not None and scan.error:
            return ParseFailure(1, 1, scan.error)
        parsed = self.files.parsed.get(key)
        return parsed.error if parsed is not None else None
