#!/usr/bin/env python3
"""How soon the manager notices a dead NF (SIGKILL) and a hung one (SIGSTOP).

Starts `onvm mgr` (generator -> service 1 -> null, two simple_forward instances so a
hung one's flows have somewhere to go), then, ROUNDS times each: SIGKILLs an NF and
times the manager's "died without stopping" event from the kill; SIGSTOPs one and
times the "hung" event (the watchdog waits WATCHDOG before it may say so). Optionally
with LOAD busy loops (`yes`) on the machine, since that is where detection used to
slip (0.35-1.0 s seen on an oversubscribed 2-core VM).

Usage: scripts/bench-detect.py [--onvm target/release/onvm] [--rounds 20] [--load 2]
Prints each latency and the median, p90 and max per kind.
"""

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CHAIN = """[manager]
ports = ["gen:64B,256flows,rate=100k", "null"]
shared_cores = true

[services]
fwd = 1

[[chains]]
name = "through fwd"
chain = ["fwd", "out:1"]
in_port = 0
"""


def reader(stream, q):
    for line in iter(stream.readline, ""):
        q.put((time.monotonic(), line.rstrip("\n")))


def wait_line(q, needle, timeout=30.0):
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            sys.exit(f"no manager event containing {needle!r} within {timeout} s")
        try:
            at, line = q.get(timeout=left)
        except queue.Empty:
            continue
        if needle in line:
            return at, line


def start_nf(onvm, sock, tag, q):
    p = subprocess.Popen(
        [onvm, "nf", "--socket", sock, "--service", "1", "--tag", tag, "--shared-core", "simple-forward"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, line = wait_line(q, f'NF "{tag}" registered')
    instance = int(line.split("instance ")[1].split(",")[0])
    return p, instance


def summary(kind, xs):
    ms = sorted(x * 1000 for x in xs)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{kind:<8} n={len(ms)}  median {statistics.median(ms):.1f} ms  p90 {p90:.1f} ms  max {ms[-1]:.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onvm", default="target/release/onvm")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--load", type=int, default=2, help="busy loops (yes) running meanwhile")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="onvm-detect-")
    sock = os.path.join(tmp, "onvm.sock")
    cfg = os.path.join(tmp, "chain.toml")
    with open(cfg, "w") as f:
        f.write(CHAIN)
    load = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(a.load)]
    mgr = subprocess.Popen(
        [a.onvm, "mgr", "--stats", "off", "--socket", sock, "--config", cfg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    q = queue.Queue()
    threading.Thread(target=reader, args=(mgr.stderr, q), daemon=True).start()
    nfs = []
    try:
        wait_line(q, "ports receiving")
        keep, _ = start_nf(a.onvm, sock, "keep", q)
        nfs.append(keep)
        died, hung = [], []
        for r in range(a.rounds):
            victim, inst = start_nf(a.onvm, sock, f"v{r}", q)
            nfs.append(victim)
            time.sleep(0.2)
            os.kill(victim.pid, signal.SIGKILL)
            t0 = time.monotonic()
            at, _ = wait_line(q, f"(instance {inst}) died without stopping")
            died.append(at - t0)
            victim.wait()
            print(f"kill  {r:>2}: {died[-1] * 1000:7.1f} ms")
        for r in range(a.rounds):
            victim, inst = start_nf(a.onvm, sock, f"h{r}", q)
            nfs.append(victim)
            time.sleep(0.3)
            os.kill(victim.pid, signal.SIGSTOP)
            t0 = time.monotonic()
            at, _ = wait_line(q, f"(instance {inst}) hung")
            hung.append(at - t0)
            os.kill(victim.pid, signal.SIGKILL)
            os.kill(victim.pid, signal.SIGCONT)
            victim.wait()
            wait_line(q, f"(instance {inst}) died without stopping")
            print(f"stop  {r:>2}: {hung[-1] * 1000:7.1f} ms")
        print(f"\nwith {a.load} busy loop(s) on {os.cpu_count()} CPUs:")
        summary("dead", died)
        summary("hung", hung)
    finally:
        for p in nfs + load:
            p.kill()
        mgr.send_signal(signal.SIGTERM)
        try:
            mgr.wait(timeout=10)
        except subprocess.TimeoutExpired:
            mgr.kill()


if __name__ == "__main__":
    main()
