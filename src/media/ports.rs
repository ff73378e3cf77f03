//! The RTP port pool: hands out even UDP ports from the configured range.
//!
//! Even ports carry RTP; the odd port above each is left for RTCP (RFC 3550 §11), so only
//! ports whose RTCP neighbour is also in range are used. A call takes three (one per
//! [`Leg`](super::relay::Leg)): a range of N ports carries about N / 6 calls. Free ports
//! wait in a queue in the order they were freed (at first, the range in order), and
//! allocation takes the one freed longest ago: a just-freed port is not handed out again
//! while others have rested longer (late packets of the old call must not leak into a new
//! one), and a port is found at once however many are leased (a scan of the range for one
//! took 11 % of the SIP worker when most were).
//!
//! A finished leg's bound sockets are parked here rather than closed ([`PortPool::park`])
//! and handed to a later leg once they have rested [`QUARANTINE`] ([`PortPool::reuse`]):
//! `socket`, `bind` and `close` were ~6 % of a call's CPU at 1,000 calls/s (four sockets a
//! call). A parked port is neither free nor leased: it is out of the queue, and only when
//! no free port is left does allocation take the longest parked one back (its sockets
//! closed). At most half the ports not leased are parked, so new legs find free ports
//! without closing parked ones. Its late packets wait in its queue, which the relay empties
//! before reuse; a pair parked longer than [`PARKED_MAX_AGE`] is closed at the next reuse,
//! so a peer still streaming at a parked port fills no buffer for long.
//!
//! A port in range may still be held by another process (typically a client socket the
//! kernel placed there because the range overlaps its ephemeral ports): the relay skips a
//! port that fails to bind and takes the next (see `relay::bind_one`), and
//! [`ephemeral_overlap`] lets start-up warn about such a configuration.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The configured range holds no usable RTP/RTCP port pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("RTP port range {min}-{max} holds no even port with its RTCP port")]
pub struct PortRangeError {
    pub min: u16,
    pub max: u16,
}

/// How long a parked pair rests before another leg takes it: the late packets of its last
/// call (in flight at its BYE) have arrived by then and are drained, and a new leg is not
/// latched by them.
pub const QUARANTINE: Duration = Duration::from_secs(2);

/// A pair parked longer is closed at the next [`PortPool::reuse`].
pub const PARKED_MAX_AGE: Duration = Duration::from_secs(30);

/// The bound RTP and RTCP sockets of a finished leg, on `port` and `port + 1` of `ip`.
#[derive(Debug)]
pub struct ParkedPair {
    pub ip: IpAddr,
    pub port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

#[derive(Debug)]
struct State {
    /// The ports neither leased nor parked, the one freed longest ago first.
    free: VecDeque<u16>,
    /// Leased ports.
    in_use: HashSet<u16>,
    /// Parked pairs, the longest parked first, with when each was parked.
    parked: VecDeque<(Instant, ParkedPair)>,
    /// Their ports.
    parked_ports: HashSet<u16>,
}

/// Thread-safe pool of even RTP ports; share it as `Arc<PortPool>`.
#[derive(Debug)]
pub struct PortPool {
    /// First and last usable even ports.
    first: u16,
    last: u16,
    /// Most pairs parked at once (two descriptors each).
    parked_max: usize,
    /// How long a parked pair rests ([`QUARANTINE`] unless set).
    quarantine: Duration,
    state: Mutex<State>,
}

impl PortPool {
    /// A pool over `[min, max]` (inclusive). Uses even ports `p` with `p + 1 <= max`.
    pub fn new(min: u16, max: u16) -> Result<PortPool, PortRangeError> {
        let err = PortRangeError { min, max };
        // Port 0 means "any port" to the OS; never hand it out.
        let first = min.max(2).checked_add(min % 2).ok_or(err)?;
        let last = match max {
            0 => return Err(err),
            m if m % 2 == 1 => m - 1,
            m => m - 2,
        };
        if first > last {
            return Err(err);
        }
        Ok(PortPool {
            first,
            last,
            parked_max: usize::from((last - first) / 2) + 1,
            quarantine: QUARANTINE,
            state: Mutex::new(State {
                free: (first..=last).step_by(2).collect(),
                in_use: HashSet::new(),
                parked: VecDeque::new(),
                parked_ports: HashSet::new(),
            }),
        })
    }

    /// Parks at most `pairs` pairs (0: none, every finished leg's sockets are closed): the
    /// open-file budget they may take, two descriptors a pair. The whole range by default.
    pub fn with_parked_max(mut self, pairs: usize) -> PortPool {
        self.parked_max = pairs.min(self.capacity());
        self
    }

    /// Number of RTP ports the pool manages (three per call).
    pub fn capacity(&self) -> usize {
        usize::from((self.last - self.first) / 2) + 1
    }

    /// Number of ports currently handed out.
    pub fn in_use(&self) -> usize {
        self.lock().in_use.len()
    }

    /// Rest parked pairs `quarantine` instead of [`QUARANTINE`].
    #[cfg(test)]
    pub fn with_quarantine(mut self, quarantine: Duration) -> PortPool {
        self.quarantine = quarantine;
        self
    }

    /// Number of pairs parked.
    pub fn parked(&self) -> usize {
        self.lock().parked.len()
    }

    /// The even port freed longest ago of those neither leased nor parked; when there is
    /// none, the longest parked one (its sockets closed); `None` when every port is leased.
    pub fn allocate(&self) -> Option<u16> {
        let mut st = self.lock();
        if let Some(port) = st.free.pop_front() {
            st.in_use.insert(port);
            return Some(port);
        }
        // A pair parked an instant ago may still be leased (its call reporting).
        let i = st
            .parked
            .iter()
            .position(|(_, p)| !st.in_use.contains(&p.port))?;
        let (_, evicted) = st.parked.remove(i)?;
        st.parked_ports.remove(&evicted.port);
        st.in_use.insert(evicted.port);
        drop(st);
        Some(evicted.port)
    }

    /// Returns a port to the pool (to the free queue's end, unless its sockets are parked);
    /// a port not leased is ignored.
    pub fn release(&self, port: u16) {
        let mut st = self.lock();
        if st.in_use.remove(&port) && !st.parked_ports.contains(&port) {
            st.free.push_back(port);
        }
    }

    /// Keeps a finished leg's bound pair for a later leg. Only a port still leased is
    /// parked (a lease given back first may already be someone else's), and only within
    /// the pool's limit and half the ports not leased: otherwise the pair is handed back,
    /// to be closed.
    pub fn park(&self, pair: ParkedPair, now: Instant) -> Result<(), ParkedPair> {
        let mut st = self.lock();
        // At most half the ports not leased: new legs find free ports, however fast legs
        // end, without closing parked ones.
        let room = self.capacity().saturating_sub(st.in_use.len()) / 2;
        if st.parked.len() >= self.parked_max.min(room)
            || !st.in_use.contains(&pair.port)
            || st.parked_ports.contains(&pair.port)
        {
            return Err(pair);
        }
        st.parked_ports.insert(pair.port);
        st.parked.push_back((now, pair));
        Ok(())
    }

    /// The longest parked pair on `ip`, if it has rested [`QUARANTINE`], its port leased
    /// to the caller (give it back with [`release`](Self::release)). Pairs parked longer
    /// than [`PARKED_MAX_AGE`] are closed on the way.
    pub fn reuse(&self, ip: IpAddr, now: Instant) -> Option<ParkedPair> {
        let mut stale = Vec::new();
        let mut st = self.lock();
        while let Some((since, _)) = st.parked.front() {
            if now.saturating_duration_since(*since) <= PARKED_MAX_AGE {
                break;
            }
            let (_, pair) = st.parked.pop_front()?;
            st.parked_ports.remove(&pair.port);
            if !st.in_use.contains(&pair.port) {
                st.free.push_back(pair.port);
            }
            stale.push(pair);
        }
        let (since, pair) = st.parked.front()?;
        let rested = now.saturating_duration_since(*since) >= self.quarantine;
        if !rested || pair.ip != ip || st.in_use.contains(&pair.port) {
            return None;
        }
        let (_, pair) = st.parked.pop_front()?;
        st.parked_ports.remove(&pair.port);
        st.in_use.insert(pair.port);
        drop(st);
        drop(stale);
        Some(pair)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where Linux keeps the range it picks ephemeral (client) ports from.
pub const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Parses the two numbers of `ip_local_port_range` ("32768\t60999\n").
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    match (numbers.next()??, numbers.next()??, numbers.next()) {
        (lo, hi, None) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// The ports `[min, max]` shares with the ephemeral range `[lo, hi]`, if any.
pub fn ephemeral_overlap((min, max): (u16, u16), (lo, hi): (u16, u16)) -> Option<(u16, u16)> {
    let (from, to) = (min.max(lo), max.min(hi));
    (from <= to).then_some((from, to))
}

/// The RTP range `[min, max]` overlaps the kernel's ephemeral (client) ports: any outgoing
/// connection on the host may take an RTP port away from calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "media.rtp_port_min..max ({min}-{max}) overlaps the kernel's ephemeral port range \
     ({}-{}, {EPHEMERAL_RANGE_FILE}) on {}-{}: other programs may hold RTP ports; move the \
     range or reserve it with net.ipv4.ip_local_reserved_ports",
    ephemeral.0, ephemeral.1, overlap.0, overlap.1
)]
pub struct EphemeralOverlap {
    pub min: u16,
    pub max: u16,
    pub ephemeral: (u16, u16),
    pub overlap: (u16, u16),
}

/// Compares `[min, max]` with this host's ephemeral range; `None` when they do not overlap
/// or the kernel's range cannot be read (not Linux).
pub fn ephemeral_conflict(min: u16, max: u16) -> Option<EphemeralOverlap> {
    let text = std::fs::read_to_string(EPHEMERAL_RANGE_FILE).ok()?;
    let ephemeral = parse_port_range(&text)?;
    let overlap = ephemeral_overlap((min, max), ephemeral)?;
    Some(EphemeralOverlap {
        min,
        max,
        ephemeral,
        overlap,
    })
}

/// Warns (at start-up) when the RTP range overlaps the kernel's ephemeral ports.
pub fn warn_if_ephemeral(min: u16, max: u16) -> Option<EphemeralOverlap> {
    let conflict = ephemeral_conflict(min, max)?;
    tracing::warn!("{conflict}");
    Some(conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ephemeral_range_parsing_and_overlap() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        for bad in ["", "32768", "a b", "60999 32768", "1 2 3", "70000 80000"] {
            assert_eq!(parse_port_range(bad), None, "{bad:?}");
        }
        let linux = (32768, 60999);
        assert_eq!(ephemeral_overlap((20000, 29999), linux), None);
        assert_eq!(ephemeral_overlap((10000, 32767), linux), None);
        assert_eq!(
            ephemeral_overlap((10000, 32768), linux),
            Some((32768, 32768))
        );
        assert_eq!(
            ephemeral_overlap((30000, 40000), linux),
            Some((32768, 40000))
        );
        assert_eq!(
            ephemeral_overlap((40000, 41000), linux),
            Some((40000, 41000))
        );
        assert_eq!(
            ephemeral_overlap((60000, 65535), linux),
            Some((60000, 60999))
        );
        assert_eq!(ephemeral_overlap((61000, 65535), linux), None);
        let message = EphemeralOverlap {
            min: 30000,
            max: 40000,
            ephemeral: linux,
            overlap: (32768, 40000),
        }
        .to_string();
        assert!(
            message.starts_with("media.rtp_port_min..max (30000-40000) overlaps the kernel's ephemeral port range (32768-60999, "),
            "{message}"
        );
        assert!(message.contains("on 32768-40000"), "{message}");
    }

    #[test]
    fn allocates_even_ports_with_rtcp_in_range() {
        let pool = PortPool::new(10001, 10007).unwrap();
        assert_eq!(pool.capacity(), 3);
        assert_eq!(pool.allocate(), Some(10002));
        assert_eq!(pool.allocate(), Some(10004));
        assert_eq!(pool.allocate(), Some(10006));
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.in_use(), 3);
    }

    #[test]
    fn even_max_keeps_room_for_rtcp() {
        let pool = PortPool::new(20000, 20004).unwrap();
        assert_eq!(pool.capacity(), 2);
        let pool = PortPool::new(65534, 65535).unwrap();
        assert_eq!(pool.allocate(), Some(65534));
    }

    /// Ports come back in the order they were freed, whatever their numbers.
    #[test]
    fn the_port_freed_longest_ago_goes_first() {
        let pool = PortPool::new(30100, 30109).unwrap();
        let all: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all, [30100, 30102, 30104, 30106, 30108]);
        for port in [30106, 30100, 30108] {
            pool.release(port);
        }
        pool.release(30106);
        let again: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(again, [30106, 30100, 30108], "once each, in that order");
    }

    #[test]
    fn rotates_instead_of_reusing_freed_port() {
        let pool = PortPool::new(30000, 30009).unwrap();
        let a = pool.allocate().unwrap();
        pool.release(a);
        let b = pool.allocate().unwrap();
        assert_ne!(a, b);
        // After a full turn the freed port comes back.
        let rest: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(rest, vec![30004, 30006, 30008, 30000]);
        assert_eq!(pool.allocate(), None);
        pool.release(30004);
        pool.release(12345);
        assert_eq!(pool.allocate(), Some(30004));
    }

    fn pair(ip: IpAddr, port: u16) -> ParkedPair {
        let any = || UdpSocket::bind((ip, 0)).unwrap();
        ParkedPair {
            ip,
            port,
            rtp: any(),
            rtcp: any(),
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A finished leg's pair rests [`QUARANTINE`] before another leg takes it, and the
    /// allocation skips it meanwhile: a port is never handed out again at once.
    #[test]
    fn a_parked_pair_rests_before_reuse_and_allocation_skips_it() {
        let pool = PortPool::new(31000, 31007).unwrap();
        let t0 = Instant::now();
        let a = pool.allocate().unwrap();
        pool.park(pair(LOCAL, a), t0).unwrap();
        pool.release(a);
        assert_eq!((pool.in_use(), pool.parked()), (0, 1));
        assert!(pool.reuse(LOCAL, t0 + QUARANTINE / 2).is_none(), "resting");
        let others: Vec<u16> = std::iter::from_fn(|| pool.allocate()).take(3).collect();
        assert!(!others.contains(&a), "{others:?} skip the parked {a}");
        others.iter().for_each(|&p| pool.release(p));
        let other_ip = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        assert!(
            pool.reuse(other_ip, t0 + QUARANTINE).is_none(),
            "another address"
        );
        let reused = pool.reuse(LOCAL, t0 + QUARANTINE).unwrap();
        assert_eq!(reused.port, a);
        assert_eq!((pool.in_use(), pool.parked()), (1, 0), "leased again");
    }

    /// Parked only while its lease is held (a lease given back may be someone else's
    /// already), within the limit, and not twice.
    #[test]
    fn parking_needs_the_lease_and_room() {
        let pool = PortPool::new(31100, 31199).unwrap().with_parked_max(2);
        let now = Instant::now();
        assert!(pool.park(pair(LOCAL, 31100), now).is_err(), "never leased");
        let [a, b, c] = [(); 3].map(|()| pool.allocate().unwrap());
        pool.park(pair(LOCAL, a), now).unwrap();
        assert!(pool.park(pair(LOCAL, a), now).is_err(), "already parked");
        pool.park(pair(LOCAL, b), now).unwrap();
        assert!(pool.park(pair(LOCAL, c), now).is_err(), "limit reached");
        let none = PortPool::new(31100, 31109).unwrap().with_parked_max(0);
        let d = none.allocate().unwrap();
        assert!(none.park(pair(LOCAL, d), now).is_err(), "parking off");
    }

    /// Half the ports not leased at most are parked; with no free port left, the longest
    /// parked one goes back into service (closed), never one whose lease is still held; a
    /// pair parked too long is closed at the next reuse.
    #[test]
    fn a_full_range_takes_parked_ports_back_and_stale_pairs_close() {
        let pool = PortPool::new(31200, 31207).unwrap();
        let t0 = Instant::now();
        let (a, b) = (pool.allocate().unwrap(), pool.allocate().unwrap());
        pool.park(pair(LOCAL, a), t0).unwrap();
        assert!(
            pool.park(pair(LOCAL, b), t0).is_err(),
            "room for one of four"
        );
        let rest: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(rest, [31204, 31206]);
        assert_eq!(
            pool.allocate(),
            None,
            "the parked pair's lease is still held"
        );
        pool.release(a);
        assert_eq!(pool.allocate(), Some(a), "taken back from the parked");
        assert_eq!(pool.parked(), 0);

        [a, b, 31204, 31206]
            .into_iter()
            .for_each(|p| pool.release(p));
        let c = pool.allocate().unwrap();
        pool.park(pair(LOCAL, c), t0).unwrap();
        pool.release(c);
        assert!(
            pool.reuse(LOCAL, t0 + PARKED_MAX_AGE + QUARANTINE)
                .is_none()
        );
        assert_eq!((pool.parked(), pool.in_use()), (0, 0), "stale: closed");
    }

    #[test]
    fn invalid_ranges() {
        for (min, max) in [
            (0, 0),
            (0, 1),
            (100, 100),
            (101, 102),
            (200, 100),
            (65535, 65535),
        ] {
            assert_eq!(
                PortPool::new(min, max).unwrap_err(),
                PortRangeError { min, max },
                "{min}-{max}"
            );
        }
        let pool = PortPool::new(0, 3).unwrap();
        assert_eq!(pool.allocate(), Some(2));
    }

    #[test]
    fn shared_between_threads() {
        let pool = Arc::new(PortPool::new(40000, 40199).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| pool.allocate().unwrap())
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let mut all: Vec<u16> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 100);
        assert!(all.iter().all(|p| p % 2 == 0));
    }
}
