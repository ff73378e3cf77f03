"""Per-thread CPU and run-queue wait time series of a process, for loadtest/sidebyside.sh's
latency analysis (LATENCY=1).

    python3 loadtest/thread_cpu.py PID OUT [PERIOD_S=0.01]

Every PERIOD_S until PID exits (or SIGTERM), appends to OUT one line per thread that ran or
waited since the last sample: `epoch_ms tid comm cpu_us runq_us` from
/proc/PID/task/*/schedstat (time on a CPU, time runnable but waiting for one; nanosecond
counters, unlike stat's 10 ms ticks), and one line `epoch_ms 0 procs_running N 0` (the
machine's runnable threads, /proc/stat). A thread that neither ran nor waited while a call
was slow was blocked (a lock, IO); one that waited in the run queue lost its core to
another process. loadtest/latency_report.py lines it up with SIPp's response times.
"""
import os
import signal
import sys
import time

pid, out = sys.argv[1], sys.argv[2]
period = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
last, names = {}, {}


def comm(tid):
    if tid not in names:
        try:
            names[tid] = open(f"/proc/{pid}/task/{tid}/comm").read().strip().replace(" ", "_")
        except OSError:
            names[tid] = "?"
    return names[tid]


with open(out, "w", buffering=1 << 16) as f:
    while os.path.exists(f"/proc/{pid}"):
        now = int(time.time() * 1000)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            break
        for tid in tids:
            try:
                run_ns, wait_ns, _ = (int(x) for x in open(f"/proc/{pid}/task/{tid}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            prev = last.get(tid)
            last[tid] = (run_ns, wait_ns)
            if prev and (run_ns, wait_ns) != prev:
                f.write(f"{now} {tid} {comm(tid)} {(run_ns - prev[0]) // 1000} {(wait_ns - prev[1]) // 1000}\n")
        for line in open("/proc/stat"):
            if line.startswith("procs_running"):
                f.write(f"{now} 0 procs_running {line.split()[1]} 0\n")
        time.sleep(period)
