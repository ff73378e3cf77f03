//! A call's part of the kernel path ([`crate::media::kernel`]): when the call qualifies,
//! the two map entries that relay its bridge in the kernel; their removal, synchronous,
//! before anything changes what a leg hears; and the kernel's counters folded into the
//! call's ([`LegStats`], metrics) every second, so the dead-leg timeouts see the packets.
//!
//! Qualifying is the session's rules ([`MediaSession::fast_paths`]) plus the legs': both
//! plain RTP over UDP/IPv4 on their sockets (no SRTP, no WebRTC peer), both latched.

use std::net::SocketAddrV4;

use super::task::Counters;
use super::*;
use crate::media::kernel::Legs;
use crate::media::kernel::records::{LegVal, Renumber, Route};
use sas_core::media::session::FastPath;

/// How often the kernel's counters are read into the call's.
const SYNC_EVERY: Duration = Duration::from_secs(1);

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

/// One direction installed: packets sent to `key` (our socket on `path.from`).
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

/// The call's entries while it is in the kernel, removed on drop.
pub(super) struct KernelCall {
    path: KernelPath,
    entries: [Entry; 2],
    /// Still in the map.
    installed: bool,
    /// The counters of each entry already folded into the call's.
    folded: [LegVal; 2],
    pub(super) next_sync: Instant,
}

impl Drop for KernelCall {
    fn drop(&mut self) {
        self.remove();
    }
}

impl KernelCall {
    /// Installs `entries`; on a refusal (map full) removes what went in and says why.
    pub(super) fn install(path: &KernelPath, entries: [Entry; 2]) -> Option<KernelCall> {
        for (i, e) in entries.iter().enumerate() {
            if let Err(error) = path.legs.install(e.key, e.val) {
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
        })
    }

    pub(super) fn entries(&self) -> [Entry; 2] {
        self.entries
    }

    /// Folds the kernel's counters since the last time into the call's `legs` and
    /// `counters`, and says where the kernel's streams are ([`Sent`]).
    pub(super) fn sync(&mut self, legs: &[LegShared; 3], counters: &Counters) -> Vec<Sent> {
        self.next_sync = Instant::now() + SYNC_EVERY;
        let now = self.entries.map(|e| self.path.legs.read(e.key));
        self.fold(legs, counters, now);
        self.sent(now)
    }

    /// Removes the entries (the next packet is the socket's), folds their last counters
    /// into the call's, and says where the kernel's streams stopped.
    pub(super) fn leave(mut self, legs: &[LegShared; 3], counters: &Counters) -> Vec<Sent> {
        let last = self.remove();
        self.fold(legs, counters, last);
        self.sent(last)
    }

    fn sent(&self, vals: [Option<LegVal>; 2]) -> Vec<Sent> {
        let now_ns = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
            .unwrap_or(0);
        self.entries
            .iter()
            .zip(vals)
            .filter_map(|(e, val)| {
                let val = val.filter(|v| v.packets > 0)?;
                Some(Sent {
                    to: e.path.to,
                    last_seq: val.last_seq,
                    last_ts: val.last_ts,
                    ago: Duration::from_nanos(now_ns.saturating_sub(val.last_seen)),
                })
            })
            .collect()
    }

    fn remove(&mut self) -> [Option<LegVal>; 2] {
        if !std::mem::take(&mut self.installed) {
            return [None, None];
        }
        self.entries.map(|e| self.path.legs.remove(e.key))
    }

    fn fold(&mut self, legs: &[LegShared; 3], counters: &Counters, now: [Option<LegVal>; 2]) {
        for ((e, folded), val) in self.entries.iter().zip(&mut self.folded).zip(now) {
            let Some(val) = val else { continue };
            let packets = val.packets.saturating_sub(folded.packets);
            let bytes = val.bytes.saturating_sub(folded.bytes) as usize;
            *folded = val;
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
    }
}

/// The entries that would relay this call in the kernel now, if it qualifies: `local` is
/// each leg's socket address, `plain(leg)` whether it is plain RTP on its socket.
pub(super) fn plan(
    session: &MediaSession,
    legs: &[LegShared; 3],
    local: &[Option<SocketAddr>; 3],
    plain: impl Fn(Leg) -> bool,
    ifindex: u32,
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
            ifindex,
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
            val: LegVal::new(route, Some(rtp), 0, None),
        })
    };
    let [up, down] = session.fast_paths()?;
    Some([entry(up)?, entry(down)?])
}
