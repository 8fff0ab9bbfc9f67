"""Runs a list of trial specs in isolated worker processes and appends their records.

* Each trial runs in a worker process with a time limit (and optional memory limit); a
  crash, exception or time-out becomes a failed / timeout record and the run goes on.
* Trials already recorded as finished in the run file are not redone (resumption), unless
  their dataset's content changed or their per-user file is damaged.
* Two runs into one results directory split the trials between them (``store.Claims``).
* Trials run one at a time so that timings are not distorted by each other.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import store
from bench.errors import StoreFault
from bench.trial import TrialSpec, base_record, finish

_log = logging.getLogger(__name__)
#: a trial's stage progress is shown once it has run this long
PROGRESS_AFTER_SECONDS = 10.0


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


class Worker:
    """One long-lived ``python -m bench.worker`` process."""

    def __init__(self, log_path: Path, max_threads: int) -> None:
        env = dict(os.environ)
        # Pools are sized to the largest thread count wanted; each trial then lowers them.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(max_threads)
        env["NUMBA_NUM_THREADS"] = str(max_threads)
        env["PYTHONUNBUFFERED"] = "1"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            start_new_session=True,
        )

    def run(
        self, request: dict, timeout: float, on_progress: Callable[[str], None] | None = None
    ) -> tuple[dict | None, str | None]:
        """The worker's answer, or (None, reason) when it crashed or timed out.  Progress
        lines the trial sends before its answer go to ``on_progress``."""
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None, self._death()
        deadline = time.monotonic() + timeout
        while True:
            sel = selectors.DefaultSelector()
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(max(deadline - time.monotonic(), 0.0))
            sel.close()
            if not ready:
                self.kill()
                return None, f"timeout: exceeded the time limit of {timeout:g} s"
            line = self.proc.stdout.readline()
            if not line:
                return None, self._death()
            answer = json.loads(line)
            if set(answer) == {"progress"}:
                if on_progress is not None:
                    on_progress(answer["progress"])
                continue
            return answer, None

    def _death(self) -> str:
        code = self.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            return f"worker crashed: killed by {name} (see the run log)"
        return f"worker exited with code {code} (see the run log)"

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


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
) -> RunSummary:
    """Run ``specs`` (resuming), appending one record per trial to ``run_path``.

    A trial counts as done when its latest record finished (``ok`` only, with
    ``retry_failed``), was computed on the dataset's current content (``fingerprints``:
    dataset name -> ``Dataset.fingerprint()[:16]``) and its per-user file is intact.
    Another run writing to the same file splits the work (``store.Claims``).  A fault of
    the results store raises ``StoreFault`` with nothing recorded for the trial.
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
        )

    latest = store.latest(store.read(run_path))
    stale = [t for t in by_id if t in latest and latest[t].get("status") in finished
             and not is_done(latest[t])]
    if stale:
        log(f"{len(stale)} recorded trial(s) are re-run: their dataset changed since (new "
            "fingerprint) or their per-user file is missing or corrupt")
    todo = [s for s in specs if not (s.trial_id in latest and is_done(latest[s.trial_id]))]
    summary = RunSummary(total=len(specs), skipped_done=len(specs) - len(todo), counts={})
    if summary.skipped_done:
        log(f"resuming: {summary.skipped_done} of {len(specs)} trials already recorded")
    claims = store.Claims(run_path)
    max_threads = max((s.threads for s in todo), default=1)
    worker: Worker | None = None
    started = time.perf_counter()
    run_seconds = 0.0  # time spent on trials that actually ran, for the estimate
    ran = 0
    log_path = run_path.with_suffix(".log")
    try:
        for n, spec in enumerate(todo, 1):
            t0 = time.perf_counter()
            other = claims.claim(spec.trial_id, is_done)
            if other is not None:
                summary.skipped_done += 1
                if other:
                    summary.claimed_elsewhere += 1
                    log(f"[{n}/{len(todo)}] {spec.adapter} f{spec.fold}: run by pid {other}")
                continue
            try:
                reason = skip_reasons.get(spec.trial_id) or skip_reasons.get(spec.dataset)
                if reason is not None:
                    record = finish(base_record(spec), "skipped", reason)
                else:
                    if worker is None:
                        worker = Worker(log_path, max_threads)
                    request = {
                        "spec": spec.to_dict(),
                        "results_dir": str(results_dir),
                        "memory_limit_mb": memory_limit_mb,
                    }
                    def show(text: str, n: int = n, spec: TrialSpec = spec,
                             t0: float = t0) -> None:
                        if time.perf_counter() - t0 < PROGRESS_AFTER_SECONDS:
                            return  # short trials keep to one line each
                        log(f"[{n:>{len(str(len(todo)))}}/{len(todo)}] ...     {spec.adapter} "
                            f"{spec.dataset} f{spec.fold}: {text}  "
                            f"(trial {format_seconds(time.perf_counter() - t0)})")

                    answer, problem = worker.run(request, spec.time_limit, show)
                    if answer is None:
                        worker.close()
                        worker = None
                        status = (
                            "timeout" if problem and problem.startswith("timeout") else "failed"
                        )
                        record = finish(base_record(spec), status, problem)
                        record["duration_seconds"] = round(time.perf_counter() - t0, 3)
                    elif "store_fault" in answer:
                        raise StoreFault(answer["store_fault"])
                    else:
                        record = answer
                    run_seconds += time.perf_counter() - t0
                    ran += 1
                store.append(run_path, record)
            finally:
                claims.release(spec.trial_id)
            summary.counts[record["status"]] = summary.counts.get(record["status"], 0) + 1
            left = len(todo) - n
            eta = run_seconds / ran * left if ran else 0.0
            log(
                f"[{n:>{len(str(len(todo)))}}/{len(todo)}] {record['status']:<7} "
                f"{spec.adapter} {spec.dataset} {record.get('split_label', '')} "
                f"f{spec.fold}{' validation' if spec.stage == 'validation' else ''} "
                f"{describe(record)}  "
                f"elapsed {format_seconds(time.perf_counter() - started)}  "
                f"left ~{format_seconds(eta)}"
            )
    finally:
        if worker is not None:
            worker.close()
    return summary
