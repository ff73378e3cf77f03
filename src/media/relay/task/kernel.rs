//! A call's part of the kernel path ([`crate::media::kernel`]): when the call qualifies,
//! the two map entries that relay its bridge in the kernel; their removal, synchronous,
//! before anything changes what a leg hears; the kernel's counters folded into the call's
//! ([`LegStats`], metrics) every second, so the dead-leg timeouts see the packets; and, for
//! a recorded call, its tapped packets handed to the session's recorder.
//!
//! Qualifying is the session's rules ([`MediaSession::fast_paths`]) plus the legs': both
//! plain RTP over UDP/IPv4 on their sockets (no SRTP, no WebRTC peer), both latched.

use std::net::SocketAddrV4;

use super::*;
use crate::media::kernel::Legs;
use crate::media::kernel::records::{LegVal, Renumber, Route};
use crate::media::kernel::tap::{TapStream, TappedPackets};
use sas_core::media::session::FastPath;

/// How often the kernel's counters are read into the call's.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// How often a recorded call's tapped packets are handed to its recorder (well within the
/// recording's jitter buffer, a second).
pub(super) const FEED_EVERY: Duration = Duration::from_millis(100);

/// The slots the timers of calls in the kernel wait for (see [`RelayTask::deadline`]).
const GRID: Duration = Duration::from_millis(20);

/// Where the grid starts: one for the process, so every relay thread's calls share it.
static GRID_START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// The first slot of the grid at or after `at`.
pub(super) fn on_grid(at: Instant) -> Instant {
    let start = *GRID_START;
    let (since, grid) = (
        at.saturating_duration_since(start).as_nanos(),
        GRID.as_nanos(),
    );
    start + Duration::from_nanos((since.div_ceil(grid) * grid) as u64)
}

/// The kernel path a relay may use, with its packet counter.
#[derive(Clone)]
pub struct KernelPath {
    pub legs: &'static Legs,
    pub relayed: Option<IntCounter>,
}

impl std::fmt::Debug for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelPath").finish_non_exhaustive()
    }
}

/// One direction: packets sent to `key` (our socket on `path.from`) go as `val` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    path: FastPath,
    key: SocketAddrV4,
    val: LegVal,
}

/// Where the kernel's stream to a leg is: the furthest sequence number and timestamp it
/// sent, `ago` (the session's stream goes on from there).
pub(super) struct Sent {
    pub(super) to: Leg,
    pub(super) last_seq: u16,
    pub(super) last_ts: u32,
    pub(super) ago: Duration,
}

/// What the kernel did since the last look: where its streams are, and how many packets
/// of a recorded call the tap could not keep (its ring buffer was full).
pub(super) struct Report {
    pub(super) sent: Vec<Sent>,
    pub(super) tap_lost: u64,
}

/// A recorded call's tap, with the paths that tell its two streams' packets apart.
pub(super) struct Tap {
    stream: TapStream,
    paths: [FastPath; 2],
}

std::thread_local! {
    /// The packets a relay thread last took from one of its calls' queues: one buffer per
    /// thread, swapped with each queue in turn, instead of a second one per call (~2 KiB a
    /// recorded call at 2,000 calls).
    static TAKEN: std::cell::RefCell<TappedPackets> = std::cell::RefCell::default();
}

/// The call's entries while it is in the kernel, removed on drop.
pub(super) struct KernelCall {
    path: KernelPath,
    /// As planned (untapped: the comparison with the next plan ignores the tap ids).
    entries: [Entry; 2],
    /// Still in the map.
    installed: bool,
    /// The counters of each entry already folded into the call's.
    folded: [LegVal; 2],
    pub(super) next_sync: Instant,
    pub(super) tap: Option<Tap>,
}

impl Drop for KernelCall {
    fn drop(&mut self) {
        self.remove();
    }
}

impl KernelCall {
    /// Installs `entries`, tapped when `recorded`; on a refusal (map full) removes what
    /// went in and says why.
    pub(super) fn install(
        path: &KernelPath,
        entries: [Entry; 2],
        recorded: bool,
    ) -> Option<KernelCall> {
        let tap = recorded.then(|| Tap {
            stream: path.legs.taps().open(),
            paths: entries.map(|e| e.path),
        });
        let ids = tap.as_ref().map(|t| t.stream.ids());
        for (i, e) in entries.iter().enumerate() {
            let val = match ids {
                Some(ids) => e.val.tapped(ids[i]),
                None => e.val,
            };
            if let Err(error) = path.legs.install(e.key, val) {
                debug!(%error, "call not taken into the kernel path: it relays in userspace");
                for done in &entries[..i] {
                    path.legs.remove(done.key);
                }
                return None;
            }
        }
        Some(KernelCall {
            path: path.clone(),
            entries,
            installed: true,
            folded: [LegVal::default(); 2],
            next_sync: Instant::now() + SYNC_EVERY,
            tap,
        })
    }

    pub(super) fn entries(&self) -> [Entry; 2] {
        self.entries
    }

    /// Folds the kernel's counters since the last time into the call's `legs` and
    /// `counters`.
    pub(super) fn sync(&mut self, legs: &[LegShared; 3], counters: &Counters) -> Report {
        self.next_sync = Instant::now() + SYNC_EVERY;
        let now = self.entries.map(|e| self.path.legs.read(e.key));
        self.fold(legs, counters, now)
    }

    /// Removes the entries (the next packet is the socket's) and folds their last counters
    /// into the call's; the tap, if any, for its last packets.
    pub(super) fn leave(
        mut self,
        legs: &[LegShared; 3],
        counters: &Counters,
    ) -> (Report, Option<Tap>) {
        let last = self.remove();
        (self.fold(legs, counters, last), self.tap.take())
    }

    fn remove(&mut self) -> [Option<LegVal>; 2] {
        if !std::mem::take(&mut self.installed) {
            return [None, None];
        }
        self.entries.map(|e| self.path.legs.remove(e.key))
    }

    fn fold(
        &mut self,
        legs: &[LegShared; 3],
        counters: &Counters,
        now: [Option<LegVal>; 2],
    ) -> Report {
        let mut report = Report {
            sent: Vec::new(),
            tap_lost: 0,
        };
        let monotonic = monotonic_ns();
        for ((e, folded), val) in self.entries.iter().zip(&mut self.folded).zip(now) {
            let Some(val) = val else { continue };
            let packets = val.packets.saturating_sub(folded.packets);
            let bytes = val.bytes.saturating_sub(folded.bytes) as usize;
            report.tap_lost += val.tap_drops.saturating_sub(folded.tap_drops);
            *folded = val;
            if val.packets > 0 {
                report.sent.push(Sent {
                    to: e.path.to,
                    last_seq: val.last_seq,
                    last_ts: val.last_ts,
                    ago: Duration::from_nanos(monotonic.saturating_sub(val.last_seen)),
                });
            }
            if packets == 0 {
                continue;
            }
            let (from, to) = (
                &legs[e.path.from.idx()].counters,
                &legs[e.path.to.idx()].counters,
            );
            LegCounters::add(&from.rx_packets, packets as usize);
            LegCounters::add(&from.rx_bytes, bytes);
            LegCounters::add(&to.tx_packets, packets as usize);
            LegCounters::add(&to.tx_bytes, bytes);
            if let Some(c) = &counters.relayed[e.path.from.idx()] {
                c.inc_by(packets);
            }
            if let Some(c) = &self.path.relayed {
                c.inc_by(packets);
            }
        }
        report
    }
}

/// `CLOCK_MONOTONIC` in ns: the clock of the program's `bpf_ktime_get_ns`.
pub(super) fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The entries that would relay this call in the kernel now, if it qualifies: `local` is
/// each leg's socket address, `plain(leg)` whether it is plain RTP on its socket.
pub(super) fn plan(
    session: &MediaSession,
    legs: &[LegShared; 3],
    local: &[Option<SocketAddr>; 3],
    plain: impl Fn(Leg) -> bool,
    egress: u32,
) -> Option<[Entry; 2]> {
    let v4 = |a: SocketAddr| match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    };
    let peer = |leg: Leg| {
        let r = legs[leg.idx()].remote();
        r.addr.filter(|_| r.latched).and_then(v4)
    };
    let entry = |path: FastPath| -> Option<Entry> {
        if !plain(path.from) || !plain(path.to) {
            return None;
        }
        let route = Route {
            from: local[path.to.idx()].and_then(v4)?,
            to: peer(path.to)?,
            source: peer(path.from)?,
            ifindex: egress,
        };
        let rtp = Renumber {
            payload_type: path.payload_type,
            ssrc_in: path.ssrc_in,
            ssrc_out: path.ssrc_out,
            seq_offset: path.seq_offset,
            ts_offset: path.ts_offset,
        };
        Some(Entry {
            path,
            key: local[path.from.idx()].and_then(v4)?,
            val: LegVal::new(route, Some(rtp), 0),
        })
    };
    // Recorded calls qualify: the kernel taps them.
    let [up, down] = session.fast_paths(true)?;
    Some([entry(up)?, entry(down)?])
}

impl RelayTask {
    /// Puts the call in the kernel, or takes it out, or moves it, as it now qualifies.
    pub(super) fn kernel_update(&mut self) {
        let Some(egress) = self.kernel_path.as_ref().map(|p| p.legs.egress()) else {
            return;
        };
        let plain = |leg: Leg| {
            matches!(self.protection[leg.idx()], Protection::Plain)
                && self.peers[leg.idx()].is_none()
        };
        let plan = plan(&self.session, &self.legs, &self.local, plain, egress);
        if plan == self.kernel.as_ref().map(KernelCall::entries) {
            return;
        }
        self.kernel_leave();
        let Some(entries) = plan.filter(|p| Some(*p) != self.kernel_refused) else {
            return;
        };
        let recorded = self.session.is_recording();
        self.kernel = self
            .kernel_path
            .as_ref()
            .and_then(|path| KernelCall::install(path, entries, recorded));
        self.kernel_refused = self.kernel.is_none().then_some(entries);
        if self.kernel.is_some() {
            if recorded {
                self.feed_at = Some(Instant::now() + FEED_EVERY);
            }
            self.relay_queued(entries.map(|e| e.path.from));
        }
    }

    /// Relays what waited on `legs`' sockets when the entries went in: it is older than
    /// what the kernel relays from now on, so it goes out now rather than after the
    /// kernel's (the next epoll turn), which a peer would see reordered.
    fn relay_queued(&mut self, legs: [Leg; 2]) {
        let mut buf = [0; RECV_BUF];
        for leg in legs {
            // Until the socket is empty (WouldBlock) or fails.
            while let Some(Ok(received)) =
                self.rtp[leg.idx()].as_ref().map(|s| s.recv_from(&mut buf))
            {
                self.on_datagram(leg, false, Ok(received), &mut buf);
            }
        }
    }

    /// Folds the kernel's counters into the call's; the session's streams go on after the
    /// kernel's packets.
    pub(super) fn kernel_sync(&mut self) {
        let Some(k) = &mut self.kernel else { return };
        let report = k.sync(&self.legs, &self.counters);
        self.kernel_report(report);
    }

    /// Takes the call out of the kernel, synchronously: the next packet is the socket's.
    /// A recorded call's last tapped packets are fed a little later (the drainer's period).
    pub(super) fn kernel_leave(&mut self) {
        let Some(k) = self.kernel.take() else { return };
        let (report, tap) = k.leave(&self.legs, &self.counters);
        self.kernel_report(report);
        if let Some(tap) = tap {
            // An earlier tail is fed (and let go) first.
            if self.tap_tail.is_some() {
                self.kernel_feed();
            }
            self.tap_tail = Some(tap);
            self.feed_at = Some(Instant::now() + 4 * crate::media::kernel::tap::PERIOD);
        }
    }

    fn kernel_report(&mut self, report: Report) {
        let now = self.clock.now();
        for s in report.sent {
            let at = now.saturating_sub(s.ago.as_millis() as u64);
            self.session.fast_path_sent(s.to, s.last_seq, s.last_ts, at);
        }
        if report.tap_lost > 0 {
            self.session.fast_path_lost(report.tap_lost);
        }
    }

    /// Hands the packets the kernel tapped to the session's recorder, at the time the
    /// kernel relayed them.
    pub(super) fn kernel_feed(&mut self) {
        let mut tail = self.tap_tail.take();
        let live = self.kernel.as_mut().and_then(|k| k.tap.as_mut());
        self.feed_at = live.as_ref().map(|_| Instant::now() + FEED_EVERY);
        let (now, monotonic) = (self.clock.now(), monotonic_ns());
        TAKEN.with_borrow_mut(|taken| {
            for tap in live.into_iter().chain(tail.as_mut()) {
                let lost = tap.stream.take(taken);
                for t in taken.iter() {
                    let ago_ms = monotonic.saturating_sub(t.at_ns) / 1_000_000;
                    let at = now.saturating_sub(ago_ms);
                    self.session
                        .fast_path_tapped(&tap.paths[t.stream], t.packet, at);
                }
                if lost > 0 {
                    self.session.fast_path_lost(lost);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 50 ms of deadlines, a millisecond apart, share 3 or 4 wake-ups, each at most a
    /// slot late.
    #[test]
    fn timers_in_the_kernel_wait_for_a_slot_of_one_shared_grid() {
        let t = Instant::now();
        let mut slots = Vec::new();
        for ms in 0..50 {
            let at = t + Duration::from_millis(ms);
            let slot = on_grid(at);
            assert!(slot >= at && slot < at + GRID);
            assert_eq!(on_grid(slot), slot, "a slot is its own slot");
            slots.push(slot);
        }
        slots.dedup();
        assert!((3..=4).contains(&slots.len()), "{} wake-ups", slots.len());
    }
}
