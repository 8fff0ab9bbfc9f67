"""Time and peak memory of generating synthetic data, each run in a fresh process.

For each generator (``synthetic:`` = bench.data.synthetic.latent, ``synthetic-popularity:``
= bench.data.synthetic.popularity, and a twin ``synthetic:like=ml-100k,scale=S``) and thread
count, a child process imports recbench, generates a small set first (so numba's compiled
kernels are loaded before the clock starts), then times one generation at the given size;
its peak resident memory is the process's whole high-water mark (``ru_maxrss``: the
interpreter, numpy, numba and the generator's temporaries included). "Output" is the bytes
of the rows (users int32, items int32, ratings float32, timestamps int64: 20 bytes a
rating).

    python benchmarks/synthetic_speed.py [--ratings 32000000] [--threads 1,2] \
        [--out results/synthetic_speed.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
kind, users, items, ratings, threads, scale = sys.argv[1], *map(int, sys.argv[2:7])
from bench.data import datasets
from bench.data.synthetic.latent import generate as latent
from bench.data.synthetic.twin import twin
from bench.data.synthetic.popularity import generate as popularity

def make(users, items, ratings, scale):
    if kind == "twin":
        return twin(datasets.load("ml-100k"), scale=scale, seed=0, threads=threads)
    generate = latent if kind == "latent" else popularity
    return generate(users, items, ratings, seed=0, threads=threads)

make(943, 1682, 100_000, 1)  # loads the compiled kernels before the clock starts
t0, c0 = time.perf_counter(), time.process_time()
ds = make(users, items, ratings, scale)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
r = ds.ratings
out = sum(a.nbytes for a in (r.users, r.items, r.ratings, r.timestamps) if a is not None)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "ratings": len(r), "users": ds.n_users,
                  "items": ds.n_items, "output_mb": out / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind: str, users: int, items: int, ratings: int, threads: int, scale: int
            ) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(users), str(items),
                           str(ratings), str(threads), str(scale)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ratings", type=int, default=32_000_000)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--twin-scale", type=int, default=320)
    ap.add_argument("--out", type=Path, default=Path("results/synthetic_speed.md"))
    args = ap.parse_args()
    users, items = round(200_948 * args.ratings / 32_000_204), round(
        84_432 * (args.ratings / 32_000_204) ** 0.5)
    rows = []
    load_before = os.getloadavg()[0]
    for threads in [int(t) for t in args.threads.split(",")]:
        for kind, label in (("latent", f"synthetic:users={users},items={items},"
                                       f"ratings={args.ratings},seed=0"),
                            ("popularity", f"synthetic-popularity:users={users},items={items},"
                                           f"ratings={args.ratings},seed=0"),
                            ("twin", f"synthetic:like=ml-100k,scale={args.twin_scale},seed=0")):
            got = measure(kind, users, items, args.ratings, threads, args.twin_scale)
            print(label, threads, got, flush=True)
            rows.append((label, threads, got))
    load_after = os.getloadavg()[0]
    lines = [
        "# Generation time and peak memory of the synthetic generators",
        "",
        f"Command: `python benchmarks/synthetic_speed.py --ratings {args.ratings} "
        f"--threads {args.threads} --twin-scale {args.twin_scale}`; "
        f"{platform.machine()}, {os.cpu_count()} cores; each row a fresh process (kernels loaded "
        "before the clock starts; peak RSS is the whole process's; CPU s: user + system "
        "time of the generation, all threads).  1-minute load average "
        f"{load_before:.1f} before and {load_after:.1f} after the runs ("
        + ("nothing else ran: the load after is the runs' own" if load_before < 1.0 else
           "other jobs shared the machine: the wall times are longer than on a quiet one")
        + ").",
        "",
        "| dataset | threads | ratings | users x items | seconds | CPU s | peak RSS MiB | "
        "output MiB | peak / output |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, threads, g in rows:
        lines.append(
            f"| `{label}` | {threads} | {g['ratings']:,} | {g['users']:,} x {g['items']:,} | "
            f"{g['seconds']:.1f} | {g['cpu_seconds']:.1f} | {g['peak_mb']:,.0f} | "
            f"{g['output_mb']:,.0f} | "
            f"{g['peak_mb'] / g['output_mb']:.2f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
