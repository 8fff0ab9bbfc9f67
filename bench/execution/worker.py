"""A worker process: reads trial requests (JSON lines) on stdin, answers records on stdout.

The runner keeps one worker alive across trials so imports and the dataset cache are paid
once, and replaces it whenever a trial crashes it or runs past its time limit.  Anything the
libraries print goes to the log (fd 2), never into the answer channel.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
from pathlib import Path


def main() -> int:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # library chatter on stdout must not corrupt the protocol
    sys.stdout = sys.stderr
    # the log file gets what library code logs (notes too), one plain line each
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    from bench.data.colstore import StoreCorrupt
    from bench.errors import StoreFault
    from bench.execution import datastore, inline, progress
    from bench.execution.executors import encode_arrays
    from bench.execution.trial import (
        TrialSpec,
        base_record,
        finish,
        run_trial,
        save_per_user,
        use_shipped,
    )

    def send_progress(text: str) -> None:  # lines the driver reads before the answer
        answers.write(json.dumps({"progress": text}) + "\n")
        answers.flush()

    progress.set_sink(send_progress)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        spec = TrialSpec.from_dict(request["spec"])
        if request.get("dataset_file"):  # executors: the driver's copy of the data
            use_shipped(spec.dataset, Path(request["dataset_file"]))
        if request.get("data_store"):  # the driver's column store: mapped, not loaded
            datastore.use_store(spec.dataset, request["data_store"])
        datastore.note_delivery(spec.dataset, bytes_scattered=request.get("bytes_scattered", 0))
        results_dir = Path(request["results_dir"]) if request.get("results_dir") else None
        limit = request.get("memory_limit_mb")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (int(limit) * 2**20, hard))
        try:
            inline.install(spec.adapter, request.get("adapter_code"))
            top_k: dict | None = {} if request.get("return_topk") else None
            record, per_user = run_trial(spec, results_dir, top_k)
            if request.get("return_per_user"):  # executors: the driver writes the store
                if per_user:
                    record["per_user_npz"] = encode_arrays(per_user)
                if top_k:
                    record["topk_npz"] = encode_arrays(top_k)
            elif results_dir is not None and per_user:
                rel, digest = save_per_user(results_dir, spec.trial_id, per_user)
                record["per_user_file"], record["per_user_sha256"] = rel, digest
        except StoreFault as exc:  # the driver stops the run; nothing is recorded
            record = {"store_fault": str(exc)}
        except inline.NotRebuilt as exc:  # an in-memory adapter this process cannot load
            record = finish(base_record(spec), "failed", str(exc))
        except StoreCorrupt as exc:  # a damaged data store: exit 2, nothing is recorded
            record = {"data_fault": str(exc)}
        finally:
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        answers.write(json.dumps(record, default=str) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
