"""The report of loadtest/sidebyside.sh: per-rung figures, then issue 18's table with a
PASS/FAIL per target, in Markdown.

    python3 loadtest/sidebyside_report.py WORK CLK_TCK SECONDS RSS_CALLS

WORK holds `runs` (one line per rung: name rate dir cpu0 cpu1 seat_cpu0 seat_cpu1
[kernel_io0 kernel_io1 [switches0 switches1]], CPU in clock ticks; kernel_io: the kernel's IO
threads, machine-wide; switches: the target's threads' context switches), `mem` (name pss_registered|pss_after kB, name calls N: the calls its last ladder sent), each rung's SIPp files (stats.csv,
*_rtt.csv, time.txt from /usr/bin/time: elapsed user sys) and, for the RSS phase, rss.log
(epoch VmRSS_kB calls_handled per second).
"""
import csv
import glob
import os
import sys

NAMES = ("kamailio", "router_rec1", "router_rec0")
SIPP_BUSY = 90.0  # % of a core from which SIPp itself may be what limits the rung


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def counts(path, planned):
    """(completed, failed) from a SIPp -trace_stat file; all failed when SIPp left none. A
    call SIPp never placed or never saw end (stopped by the rung's timeout) failed too: a
    rung whose SIPp sent nothing must not read as one without failures."""
    rows = list(csv.reader(open(path), delimiter=";")) if os.path.exists(path) else []
    if len(rows) < 2:
        return 0, planned
    head, last = rows[0], rows[-1]
    ok = int(last[head.index("SuccessfulCall(C)")])
    return ok, max(int(last[head.index("FailedCall(C)")]), planned - ok)


def rung(d, rate, secs, c0, c1, s0, s1, k0=0, k1=0, w0=0, w1=0, *, clk):
    ok, failed = counts(f"{d}/stats.csv", rate * secs)
    rtd = {"ringing": [], "answer": []}
    for f in glob.glob(f"{d}/*_rtt.csv"):
        for r in list(csv.reader(open(f), delimiter=";"))[1:]:
            if len(r) >= 3 and r[2] in rtd:
                rtd[r[2]].append(float(r[1]))
    times = open(f"{d}/time.txt").read().split() if os.path.exists(f"{d}/time.txt") else []
    elapsed, user, sys_ = (float(x) for x in (times[-3:] if len(times) >= 3 else (secs, 0, 0)))
    # Over the rung's nominal time, not SIPp's whole run (which waits for the last answers
    # and timeouts): an upper bound of its load while it sends.
    elapsed = max(min(elapsed, secs), 0.001)
    return {
        "ok": ok,
        "failed": failed,
        "failed_share": failed / max(1, ok + failed),
        "cpu_ms": (int(c1) - int(c0)) / clk * 1000 / max(1, ok),
        "kernel_io_ms": (int(k1) - int(k0)) / clk * 1000 / max(1, ok),
        "switches": (int(w1) - int(w0)) / max(1, ok),
        "p99_180": pct(rtd["ringing"], 99),
        "p99_200": pct(rtd["answer"], 99),
        "caller_cpu": 100 * (user + sys_) / elapsed,
        "seat_cpu": 100 * (int(s1) - int(s0)) / clk / elapsed,
    }


def max_ok(res, name, rates):
    """Highest rate of the ladder below which every rung had < 0.1 % failed."""
    best = 0
    for r in rates:
        x = res.get((name, r))
        if not x or x["failed_share"] >= 0.001:
            break
        best = r
    return best


def rss_at(samples, calls):
    """Median VmRSS of the samples within 5 % of `calls` handled (the heap trimmer makes RSS a
    sawtooth of up to ~15 %: one sample is not the level); None when none is that close."""
    near = sorted(rss for _, rss, n in samples if abs(n - calls) <= calls / 20)
    return near[len(near) // 2] if near else None


def media_rows(path, rows, verdict):
    """Issue 18's media targets from loadtest/media_sidebyside.sh's RESULT lines (phase 5), at
    its largest rung: the router's column holds the router's figures, Kamailio's rtpengine's."""
    if not os.path.exists(path):
        return
    runs = {}
    for line in open(path):
        kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        runs[(int(kv["calls"]), kv["mode"])] = kv
    calls = max((c for c, m in runs if m == "router"), default=None)
    r, e = runs.get((calls, "router")), runs.get((calls, "rtpengine"))
    relay = "kernel relay" if os.environ.get("MEDIA_KERNEL_RELAY", "1") == "1" else "userspace relay"
    if not r:
        rows.append((f"media ({calls} calls)", "—", "no result", "—", "—", "FAIL"))
        return
    f = lambda kv, key: float(kv.get(key, "nan"))
    clean = (r.get("relay_errors") == "0" and r["gen_behind"] == "0" and int(r["lost"]) == 0
             and int(r["bridged"]) == int(r["calls"]))
    state = (f"{int(r['bridged']):,} bridged, {int(r['lost'])} lost, generator "
             + ("on time" if r["gen_behind"] == "0" else "BEHIND") + f", {r.get('relay_errors')} log errors")
    if e:
        ratio = f(r, "pkts_per_cpu_s") / max(1.0, f(e, "pkts_per_cpu_s"))
        rows.append((f"relayed packets per CPU-second, {calls:,} recorded G.711 calls ({relay}; {state})",
                     f"rtpengine userspace: {f(e, 'pkts_per_cpu_s'):,.0f}",
                     f"{f(r, 'pkts_per_cpu_s'):,.0f} ({ratio:.2f}×)", "—",
                     "≥ 4× rtpengine, 0 loss, recording on", verdict(ratio >= 4 and clean)))
    kib = f(r, "kib_per_call")
    rows.append((f"memory per concurrent media call ({calls:,} calls)",
                 f"rtpengine: {f(e, 'kib_per_call'):.1f} KiB" if e else "—", f"{kib:.1f} KiB", "—",
                 "< 64 KiB", verdict(kib < 64)))
    core = f(r, "relay_cpu_pct") + f(r, "ksoftirqd_cpu_pct")
    rows.append((f"concurrent G.711 calls within one core, 0 loss ({relay})", "—",
                 f"{int(r['bridged']):,} calls on {core:.0f} % of a core (the router's process "
                 f"{f(r, 'relay_cpu_pct'):.0f} %, ksoftirqd {f(r, 'ksoftirqd_cpu_pct'):.0f} %; with the "
                 f"generator {f(r, 'all_cpu_pct'):.0f} %)", "—", "≥ 2,000 a core",
                 verdict(clean and int(r["bridged"]) >= 2000 and core <= 100)))


def main():
    work, clk, secs, rss_calls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    res, every = {}, []
    lines = lambda name: open(f"{work}/{name}").readlines() if os.path.exists(f"{work}/{name}") else []
    for line in lines("runs"):
        name, rate, d, *ticks = line.split()
        x = rung(d, int(rate), secs, *ticks, clk=clk)
        every.append((name, int(rate), x))
        # A repeated rate: the targets are judged on its worst rung.
        old = res.get((name, int(rate)))
        if not old or (x["failed_share"], x["p99_200"]) > (old["failed_share"], old["p99_200"]):
            res[(name, int(rate))] = x
    mem = {}
    for line in lines("mem"):
        name, what, kb = line.split()
        mem[(name, what)] = int(kb)
    rates = sorted({r for _, r in res})
    names = [n for n in NAMES if any((n, r) in res for r in rates)]
    label = {"kamailio": "Kamailio", "router_rec1": "router rec. on", "router_rec0": "router rec. off"}

    print(f"\nPer rung ({secs} s each, hold 0; CPU per completed call; p99 in whole ms from SIPp;"
          " context switches per completed call, every thread of the target;"
          " SIPp caller / seats CPU in % of one core; kernel IO: the kernel's writeback, journal"
          " and loop threads, machine-wide, per call):\n")
    print("| calls/s | target | ok / failed | CPU/call | switches/call | kernel IO/call | p99 180 / 200 | SIPp caller / seats |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rates:
        for n in names:
            for x in (x for name, rate, x in every if (name, rate) == (n, r)):
                print(f"| {r} | {label[n]} | {x['ok']} / {x['failed']} | {x['cpu_ms']:.2f} ms"
                      f" | {x['switches']:.1f}"
                      f" | {x['kernel_io_ms']:.2f} ms"
                      f" | {x['p99_180']:.0f} / {x['p99_200']:.0f} ms"
                      f" | {x['caller_cpu']:.0f} / {x['seat_cpu']:.0f} % |")

    k, on, off = "kamailio", "router_rec1", "router_rec0"
    verdict = lambda ok: "PASS" if ok else "FAIL"
    rows = []

    m = {n: max_ok(res, n, rates) for n in names}
    top = rates[-1] if rates else 0

    def sipp_note(n):
        x = res.get((n, top))
        if x and max(x["caller_cpu"], x["seat_cpu"]) >= SIPP_BUSY:
            return f" (SIPp at {max(x['caller_cpu'], x['seat_cpu']):.0f} % at {top}/s)"
        return ""

    def rate_cell(n):
        if n not in m:
            return "—"
        ratio = f" ({m[n] / m[k]:.2f}×)" if n != k and m.get(k) else ""
        return f"{m[n]:,}{ratio}{sipp_note(n)}"

    rate_ok = [m.get(on, 0) >= 1500 and m.get(on, 0) >= 0.75 * m.get(k, 0), m.get(off, 0) >= 2000]
    rows.append((f"max calls/s with < 0.1 % failed (ladder to {top:,})", rate_cell(k), rate_cell(on),
                 rate_cell(off), "on ≥ 1,500 and ≥ 0.75× Kamailio; off ≥ 2,000",
                 f"on {verdict(rate_ok[0])}, off {verdict(rate_ok[1])}"))

    def cpu_ms(n, rate):
        """The median CPU a call over the rate's rungs (a single run at a low rate moves by a
        third on a shared machine: repeat the rate to judge it), and how many rungs."""
        values = sorted(x["cpu_ms"] for name, r, x in every if (name, r) == (n, rate))
        return (values[len(values) // 2], len(values)) if values else (None, 0)

    def cpu_row(rate):
        kx = res.get((k, rate))
        kcpu, kruns = cpu_ms(k, rate)
        cells, oks = [], []
        for n in (on, off):
            x = res.get((n, rate))
            if not x or not kx:
                cells.append("—"); oks.append(False); continue
            fails = f", {100 * x['failed_share']:.1f} % failed" if x["failed_share"] >= 0.001 else ""
            cpu, runs = cpu_ms(n, rate)
            ratio = cpu / kcpu if kcpu > 0 else float("inf")
            median = f", median of {runs}" if runs > 1 else ""
            cells.append(f"{cpu:.2f} ms ({ratio:.1f}×{fails}{median})")
            oks.append(ratio <= 2 and not fails)
        kcell = f"{kcpu:.2f} ms" + (f" (median of {kruns})" if kruns > 1 else "") if kx else "—"
        rows.append((f"CPU per call at {rate:,} calls/s", kcell, cells[0], cells[1],
                     "≤ 2× Kamailio", f"on {verdict(oks[0])}, off {verdict(oks[1])}"))

    def p99_row(key, what, limit, rate=200):
        cells, oks = [], []
        for n in (k, on, off):
            x = res.get((n, rate))
            cells.append(f"{x[key]:.0f} ms" if x else "—")
            oks.append(bool(x) and x[key] < limit)
        rows.append((f"{what}, p99, {rate} calls/s", *cells, f"< {limit} ms",
                     f"on {verdict(oks[1])}, off {verdict(oks[2])}"))

    for rate in (200, 1000):
        cpu_row(rate)
    p99_row("p99_180", "INVITE → seat's INVITE (bounded by INVITE → 180)", 10)
    p99_row("p99_200", "INVITE → seat's 200", 20)

    def kept(n):
        # The calls sent to the process measured (its last ladder: one per round), every rung.
        calls = mem.get((n, "calls"), 0)
        a, b = mem.get((n, "pss_registered")), mem.get((n, "pss_after"))
        if a is None or b is None or not calls:
            return "—"
        return f"{(b - a) / calls:.1f} KiB ({a / 1024:.0f} → {b / 1024:.0f} MiB over {calls:,} calls)"

    rows.append(("memory kept per call handled (PSS after the ladder)", kept(k), kept(on), kept(off),
                 "—", "—"))

    rss_cell, rss_verdict = "skipped", "not run"
    if rss_calls > 0 and os.path.exists(f"{work}/rss.log"):
        samples = [tuple(map(int, l.split()))[:3] for l in open(f"{work}/rss.log") if len(l.split()) >= 3]
        handled = samples[-1][2] if samples else 0
        # The end: the calls handled when the phase ended (a few may still be unrecorded).
        marks = sorted({c for c in (20000, 50000, 100000, 150000) if c < handled * 0.95} | {handled})
        # Marks read the samples taken while calls came in: the idle tail (RSS comes down
        # with the heap once the calls are over) is the "idle after" figure.
        end = next((i for i, (_, _, n) in enumerate(samples) if n == handled), len(samples))
        got = [(c, rss_at(samples[:end + 1], c)) for c in marks]
        rss_cell = " / ".join(f"{rss / 1024:.0f}" if rss else "n/a" for _, rss in got) + " MiB"
        first, rest = got[0][1], [rss for _, rss in got[1:] if rss]
        if first and rest and marks[0] == 20000:
            change = max((100 * (rss - first) / first for rss in rest), key=abs)
            rss_cell += f" (at most {change:+.0f} % from 20k)"
            rss_verdict = verdict(abs(change) <= 10)
        else:
            rss_cell += f" (only {handled:,} calls handled)"
            rss_verdict = "FAIL"
        idle = samples[-1][1] if samples else 0
        rss_cell += f"; {idle / 1024:.0f} MiB idle after"
        # One SIPp run per chunk of the phase (stats1.csv, stats2.csv, …).
        runs = [counts(f, 0) for f in glob.glob(f"{work}/rss/stats*.csv")]
        ok, failed = sum(r[0] for r in runs), sum(r[1] for r in runs)
        failed += max(0, rss_calls - ok - failed)
        c0, c1 = (int(x) for x in open(f"{work}/rss_cpu").read().split())
        print(f"\nRSS phase: {ok:,} completed / {failed:,} failed, router CPU {(c1 - c0) / clk:.1f} s"
              f" ({(c1 - c0) / clk * 1000 / max(1, ok):.2f} ms per completed call), VmRSS every 10th sample"
              " (MiB @ calls handled): "
              + ", ".join(f"{rss / 1024:.0f} @ {n:,}" for _, rss, n in samples[::10]))
        marks_txt = " / ".join(f"{c // 1000}k" for c in marks[:-1]) + f" / {handled:,}"
        rate = os.environ.get("RSS_RATE", "?")
        rows.append((f"RSS after {marks_txt} calls handled (recording on, {rate} calls/s)", "—", rss_cell, "—",
                     "± 10 % from 20k to the end", rss_verdict))

    media_rows(f"{work}/media.results", rows, verdict)

    print("\nIssue 18's SIP and media targets:\n")
    print("| figure | Kamailio 5.6 registrar + proxy | sas-router, recording on | recording off | target | result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    busy = [f"{label[n]} at {r}/s: caller {x['caller_cpu']:.0f} %, seats {x['seat_cpu']:.0f} %"
            for (n, r), x in sorted(res.items()) if max(x["caller_cpu"], x["seat_cpu"]) >= SIPP_BUSY]
    print("\nSIPp: " + ("at or above 90 % of a core in " + "; ".join(busy) + " (those rungs may be SIPp-bound)"
                        if busy else f"below {SIPP_BUSY:.0f} % of a core in every rung: not the bottleneck"))


if __name__ == "__main__":
    main()
