"""Runs a list of trial specs in isolated worker processes and appends their records.

* Each trial runs in a worker process with a time limit (and optional memory limit); a
  crash, exception or time-out becomes a failed / timeout record and the run goes on.
* Trials already recorded as finished in the run file are not redone (resumption), unless
  their dataset's content changed or their per-user file is damaged.
* Two runs into one results directory split the trials between them (``store.Claims``).
* Trials run one at a time so that timings are not distorted by each other, unless an
  executor (``bench.execution.executors``: local processes, Dask) runs several at once; records then
  say how many (``env.concurrent_trials``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.colstore import StoreCorrupt
from bench.errors import StoreFault
from bench.execution import datastore, executors, inline, store, topk
from bench.execution.trial import TrialSpec, base_record, finish, load_dataset, save_per_user
from bench.splitting import splits

_log = logging.getLogger(__name__)
#: a trial's stage progress is shown once it has run this long
PROGRESS_AFTER_SECONDS = 10.0
#: a claim expires this long after its trial's time limit (loading and splitting included)
CLAIM_MARGIN_SECONDS = 600.0


@dataclass
class RunSummary:
    total: int = 0
    skipped_done: int = 0
    counts: dict[str, int] | None = None
    claimed_elsewhere: int = 0  # trials another run (same results dir) was running

    @property
    def failed(self) -> int:
        c = self.counts or {}
        return c.get("failed", 0) + c.get("timeout", 0)


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def describe(rec: dict) -> str:
    m = rec.get("metrics") or {}
    parts = [f"{k} {m[k]:.4f}" for k in ("rmse", "ndcg@10") if m.get(k) is not None]
    if rec.get("fit_seconds") is not None:
        parts.insert(0, f"fit {rec['fit_seconds']:.2f}s")
    if rec["status"] != "ok" and rec.get("error"):
        parts.append(str(rec["error"]).splitlines()[0][:160])
    return "  ".join(parts)


def run_trials(
    specs: Sequence[TrialSpec],
    results_dir: Path,
    run_path: Path,
    *,
    skip_reasons: dict[str, str] | None = None,  # by dataset name or trial id
    fingerprints: dict[str, str] | None = None,
    retry_failed: bool = False,
    memory_limit_mb: int | None = None,
    log: Callable[[str], None] = _log.info,
    executor: executors.Executor | None = None,
    jobs: int | None = None,
    keep_topk: bool = True,
) -> RunSummary:
    """Run ``specs`` (resuming), appending one record per trial to ``run_path``.

    A trial counts as done when its latest record finished (``ok`` only, with
    ``retry_failed``), was computed on the dataset's current content (``fingerprints``:
    dataset name -> ``Dataset.fingerprint()[:16]``) and its per-user file is intact.
    Another run writing to the same file splits the work (``store.Claims``).  A fault of
    the results store raises ``StoreFault`` with nothing recorded for the trial.
    Trials run on ``executor`` (default: one at a time here), at most ``jobs`` at once.
    ``keep_topk``: store each trial's top-K lists (``bench.execution.topk``) beside its
    record; a trial recorded with lists counts as done only while its file is intact.
    """
    skip_reasons = skip_reasons or {}
    fingerprints = fingerprints or {}
    finished = ("ok",) if retry_failed else store.FINISHED
    by_id = {s.trial_id: s for s in specs}

    def is_done(rec: dict) -> bool:
        spec = by_id.get(rec["trial_id"])
        current = fingerprints.get(spec.dataset) if spec else None
        recorded = rec.get("dataset_fingerprint")
        return (
            rec.get("status") in finished
            and (current is None or recorded is None or recorded == current)
            and store.per_user_intact(results_dir, rec)
            and topk.intact(results_dir, rec)
        )

    latest = store.latest(store.read(run_path))
    stale = [t for t in by_id if t in latest and latest[t].get("status") in finished
             and not is_done(latest[t])]
    if stale:
        log(f"{len(stale)} recorded trial(s) are re-run: their dataset changed since (new "
            "fingerprint) or their per-user or top-K file is missing or corrupt")
    todo = [s for s in specs if not (s.trial_id in latest and is_done(latest[s.trial_id]))]
    summary = RunSummary(total=len(specs), skipped_done=len(specs) - len(todo), counts={})
    if summary.skipped_done:
        log(f"resuming: {summary.skipped_done} of {len(specs)} trials already recorded")
    claims = store.Claims(run_path)
    max_threads = max((s.threads for s in todo), default=1)
    # --- executors (bench.execution.executors): where trials run, how many at once ---
    executor = executor or executors.SerialExecutor(run_path.with_suffix(".log"))
    if any(s.dataset not in skip_reasons and s.trial_id not in skip_reasons for s in todo):
        executor.start()

    def show_progress(spec: TrialSpec, text: str, t0: float) -> None:
        if time.perf_counter() - t0 < PROGRESS_AFTER_SECONDS:
            return  # short trials keep to one line each
        log(f"[running] {spec.adapter} {spec.dataset} f{spec.fold}: {text}  "
            f"(trial {format_seconds(time.perf_counter() - t0)})")

    executor.on_progress = show_progress
    cap = max(1, min(executor.slots, jobs or executor.slots))
    if cap > 1:  # longest first, so the run does not end on one long trial
        past = [r for f in store.files([results_dir]) for r in store.read(f)]
        todo = executors.longest_first(todo, executors.past_costs(past))
    tasks = TaskFactory(todo, results_dir, executor, skip_reasons, max_threads, memory_limit_mb,
                        keep_topk)
    pending: dict = {}  # future -> (spec, submitted at)
    queue = iter(todo)
    started = time.perf_counter()
    ran = n = 0
    try:
        while True:
            while len(pending) < cap and (spec := next(queue, None)) is not None:
                other = claims.claim(spec.trial_id, is_done,
                                     max_age=spec.time_limit + CLAIM_MARGIN_SECONDS)
                if other is not None:
                    n += 1
                    summary.skipped_done += 1
                    if other:
                        summary.claimed_elsewhere += 1
                        log(f"[{n}/{len(todo)}] {spec.adapter} f{spec.fold}: run by pid {other}")
                    continue
                reason = skip_reasons.get(spec.trial_id) or skip_reasons.get(spec.dataset)
                if reason is not None:  # dataset unavailable, or not admitted
                    record = finish(base_record(spec), "skipped", reason)
                    n += 1
                    _record(run_path, results_dir, claims, spec, record, {}, summary)
                    _progress(log, n, len(todo), spec, record, started, 0.0)
                    continue
                pending[executor.submit(tasks.task(spec))] = (spec, time.perf_counter())
            if not pending:
                break
            done, _ = cf.wait(list(pending), timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                spec, t0 = pending[future]
                outcome = _outcome(future, spec, t0)  # a lost cluster raises: claim released
                del pending[future]
                if outcome.store_fault:
                    claims.release(spec.trial_id)
                    raise StoreFault(outcome.store_fault)
                if outcome.data_fault:  # a damaged data store: exit 2, nothing recorded
                    claims.release(spec.trial_id)
                    raise StoreCorrupt(outcome.data_fault)
                record = outcome.record
                if "env" in record:
                    record["env"]["concurrent_trials"] = min(cap, executor.concurrency(
                        outcome.host))
                n += 1
                ran += 1
                _record(run_path, results_dir, claims, spec, record, outcome.per_user, summary,
                        outcome.topk)
                eta = (time.perf_counter() - started) / ran * (len(todo) - n)
                _progress(log, n, len(todo), spec, record, started, eta)
    finally:
        # Ctrl-C or a store fault: outstanding trials are dropped (a resumed run redoes
        # them); every record already appended is whole.
        executor.cancel(list(pending))
        for spec, _ in pending.values():
            claims.release(spec.trial_id)
        executor.close()
    # --- end executors ---
    return summary


def _outcome(future: cf.Future, spec: TrialSpec, t0: float) -> executors.TrialOutcome:
    """The task's outcome; a task that itself failed (a lost Dask worker) is a failed trial."""
    try:
        return future.result()
    except StoreFault:  # the cluster was lost: no verdict on the model, nothing recorded
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        record = finish(base_record(spec), "failed",
                        f"worker crashed: {type(exc).__name__}: {exc}"[:500])
        record["duration_seconds"] = round(time.perf_counter() - t0, 3)
        return executors.TrialOutcome(record)


def _record(run_path: Path, results_dir: Path, claims: store.Claims, spec: TrialSpec,
            record: dict, per_user: dict, summary: RunSummary,
            lists: dict | None = None) -> None:
    """Write the per-user and top-K files and append the record (the driver alone writes)."""
    try:
        if per_user:
            rel, digest = save_per_user(results_dir, spec.trial_id, per_user)
            record["per_user_file"], record["per_user_sha256"] = rel, digest
        if lists and record.get("status") == "ok":
            rel, digest = topk.save(results_dir, spec.trial_id, lists)
            record["topk_file"], record["topk_sha256"] = rel, digest
            record["topk_k"] = int(lists["item"].shape[1])
        store.append(run_path, record)
    finally:
        claims.release(spec.trial_id)
    summary.counts[record["status"]] = summary.counts.get(record["status"], 0) + 1


def _progress(log: Callable[[str], None], n: int, total: int, spec: TrialSpec, record: dict,
              started: float, eta: float) -> None:
    log(
        f"[{n:>{len(str(total))}}/{total}] {record['status']:<7} "
        f"{spec.adapter} {spec.dataset} {record.get('split_label', '')} "
        f"f{spec.fold}{' validation' if spec.stage == 'validation' else ''} "
        f"{describe(record)}  "
        f"elapsed {format_seconds(time.perf_counter() - started)}  "
        f"left ~{format_seconds(eta)}"
    )


class TaskFactory:
    """Turns specs into self-contained tasks: the driver computes (and stores) each split
    once and gives the task the fingerprints to check what the worker rebuilds."""

    def __init__(self, todo: Sequence[TrialSpec], results_dir: Path,
                 executor: executors.Executor, skip_reasons: dict[str, str],
                 max_threads: int, memory_limit_mb: int | None,
                 keep_topk: bool = True) -> None:
        self.results_dir, self.executor = results_dir, executor
        self.keep_topk = keep_topk
        self.max_threads, self.memory_limit_mb = max_threads, memory_limit_mb
        self.expected: dict[str, tuple[str, str]] = {}
        self.shipped: dict[str, str | None] = {}
        self.stores: dict[str, str | None] = {}
        by_dataset: dict[str, list[TrialSpec]] = {}
        for s in todo:
            if s.dataset not in skip_reasons:
                by_dataset.setdefault(s.dataset, []).append(s)
        for name, group in by_dataset.items():
            dataset = load_dataset(name)
            data_fp = dataset.fingerprint()  # hashes every row: once per dataset
            store_dir = Path(results_dir) / "splits"
            assignments: dict[splits.SplitSpec, np.ndarray] = {}
            # folds whose test-stage trials read their rows from files of their own
            fold_files: dict[splits.SplitSpec, set[int]] = {}
            for s in group:
                if s.split not in assignments:
                    assignments[s.split] = splits.load_or_assign(
                        dataset.ratings, s.split, store_dir)
                fold = splits.fold_rows(assignments[s.split], s.fold)
                if s.stage == "validation":
                    fold = splits.validation_rows(dataset.ratings, fold.train_rows, s.split)
                else:
                    fold_files.setdefault(s.split, set()).add(s.fold)
                self.expected[s.trial_id] = (data_fp[:16], fold.fingerprint)
            # the dataset and its splits written once, read by every trial (or, where the
            # hosts cannot reach the store, the dataset shipped as before)
            try:
                published = datastore.publish(dataset, data_fp, assignments, fold_files)
            except OSError as exc:  # a full or read-only cache: each worker loads it
                _log.warning("data store not written (%s); workers load %s themselves",
                             exc, name)
                published = None
            where = executor.store_location(*published) if published else None
            self.stores[name] = where
            self.shipped[name] = None if where else executor.prepare_dataset(name, dataset)

    def task(self, spec: TrialSpec) -> executors.TrialTask:
        data_fp, split_fp = self.expected.get(spec.trial_id, (None, None))
        local = self.executor.on_driver_host()
        return executors.TrialTask(
            spec=spec.to_dict(),
            run_token=self.executor.run_token,
            max_threads=self.max_threads,
            memory_limit_mb=self.memory_limit_mb,
            dataset_fingerprint=data_fp,
            split_fingerprint=split_fp,
            results_dir=str(self.results_dir) if local else None,
            shipped_key=self.shipped.get(spec.dataset),
            keep_topk=self.keep_topk,
            adapter_code=inline.payload(spec.adapter),
            shipped_bytes=self.executor.shipped_bytes(self.shipped.get(spec.dataset)),
            data_store=self.stores.get(spec.dataset),
        )
