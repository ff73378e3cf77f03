"""Where the slow call set-ups of a loadtest/sidebyside.sh rung went (LATENCY=1 runs).

    python3 loadtest/latency_report.py RUNG_DIR [N=10]

RUNG_DIR holds SIPp's *_rtt.csv (every call's INVITE→180 and INVITE→200, with the time the
answer came, from SIPp's start), stats.csv (SIPp's start) and threads.log (loadtest/thread_cpu.py). Prints the p50/p99/max of each, the
p99 per second of the rung (a spike is one second or spread), and, for the N slowest
INVITE→200, the threads of the router that ran most in the window of that set-up.
"""
import collections
import csv
import glob
import sys


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def main():
    d, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rtt = collections.defaultdict(list)  # what → [(answered_ms, took_ms)]
    for f in glob.glob(f"{d}/*_rtt.csv"):
        for r in list(csv.reader(open(f), delimiter=";"))[1:]:
            if len(r) >= 3:
                # SIPp's date (when the answer came) and the response time, both in ms.
                rtt[r[2]].append((float(r[0]), float(r[1])))
    for what, xs in sorted(rtt.items()):
        took = [t for _, t in xs]
        print(f"{what}: {len(took)} calls, p50 {pct(took, 50):.1f} / p99 {pct(took, 99):.1f} / max {max(took):.1f} ms")
    answers = rtt.get("answer", [])
    if not answers:
        return
    # The rtt dates count from SIPp's start, whose epoch is in stats.csv (StartTime's third
    # tab-separated part).
    epoch = 0.0
    try:
        row = list(csv.reader(open(f"{d}/stats.csv"), delimiter=";"))[1]
        epoch = float(row[0].split("\t")[2]) * 1000
    except (OSError, IndexError, ValueError):
        pass
    answers = [(at + epoch, took) for at, took in answers]
    start = min(at for at, _ in answers)
    per_s = collections.defaultdict(list)
    for at, took in answers:
        per_s[int((at - start) // 1000)].append(took)
    slow = [f"{s}:{pct(v, 99):.0f}" for s, v in sorted(per_s.items()) if pct(v, 99) > 12]
    print("INVITE→200 p99 by second of the rung, where > 12 ms: " + (" ".join(slow) or "none"))
    threads = []
    try:
        for line in open(f"{d}/threads.log"):
            t, tid, comm, run_us, wait_us = line.split()
            threads.append((int(t), tid, comm, int(run_us), int(wait_us)))
    except FileNotFoundError:
        pass
    print("  slowest set-ups: start in the rung, time; the router's threads in that window"
          " (ms on a CPU / ms waiting for one), the machine's runnable threads (max)")
    for at, took in sorted(answers, key=lambda x: -x[1])[:n]:
        begin, busy, waits, running = at - took, collections.Counter(), collections.Counter(), 0
        for t, tid, comm, run_us, wait_us in threads:
            if begin <= t <= at + 10:
                if tid == "0":
                    running = max(running, run_us)
                else:
                    busy[f"{comm}/{tid}"] += run_us
                    waits[f"{comm}/{tid}"] += wait_us
        top = ", ".join(f"{k} {busy[k] / 1000:.0f}/{waits[k] / 1000:.0f}" for k, _ in (busy + waits).most_common(6))
        print(f"  +{(at - took - start) / 1000:7.3f} s {took:5.0f} ms | {top} | runnable {running}")


if __name__ == "__main__":
    main()
