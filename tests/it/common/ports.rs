//! Ports no two tests share: every router's RTP range and every peer's media ports come from
//! counters over a block of ports below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default), so no socket bound
//! to port 0 anywhere can take one of them.
//!
//! The test binary holds one block (an exclusive lock on a file in the temp directory), so a
//! second suite running at the same time (another checkout) takes another block. Inside the
//! block a router gets [`ROUTER_PORTS`] ports, a peer [`PEER_PORTS`] for media and one for SIP
//! ([`signal_port`]): a run starts about 75 routers and 200 peers; the counters wrap, after
//! which a slot is reused only long after its test ended, and one still held is passed over.

use std::fs::File;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where blocks start; the area below is left to system services.
const FIRST: u16 = 10_000;
/// Blocks end below this even when the ephemeral range starts higher.
const LAST: u16 = 32_000;
/// Ports per router's RTP range (25 RTP/RTCP pairs; a test has at most 7 seats).
pub const ROUTER_PORTS: u16 = 50;
const ROUTER_SLOTS: u16 = 75;
/// Ports per peer (SIPp `-mp` takes audio RTP/RTCP and video RTP/RTCP; baresip's `rtp_ports`).
pub const PEER_PORTS: u16 = 8;
const PEER_SLOTS: u16 = 200;
/// The one wide range of a block (the fuzzer's router, whose every admitted INVITE takes
/// a port pair).
pub const WIDE_PORTS: u16 = 1_600;
/// Single ports for peers' SIP sockets (SIPp `-p`, baresip's `sip_listen`).
const SIGNAL_SLOTS: u16 = 200;
const BLOCK: u16 =
    ROUTER_PORTS * ROUTER_SLOTS + PEER_PORTS * PEER_SLOTS + WIDE_PORTS + SIGNAL_SLOTS;

/// An RTP port range of its own for a router: (min, max), both even.
pub fn rtp_range() -> (u16, u16) {
    router_range(block(), next(&ROUTERS, ROUTER_SLOTS))
}

/// The first of [`PEER_PORTS`] ports of its own for a peer's media (SIPp `-mp`): a slot
/// whose ports something else on the machine holds (a service below the ephemeral range)
/// is passed over. The router's own pool skips such ports by itself.
pub fn media_port() -> u16 {
    let block = block();
    for _ in 0..PEER_SLOTS {
        let first = peer_port(block, next(&PEERS, PEER_SLOTS));
        let free = (first..first + PEER_PORTS)
            .all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return first;
        }
    }
    panic!("no free media ports in the test port block from {block}");
}

/// A port of its own for a peer's SIP, free on UDP and TCP (SIPp over TCP and baresip bind
/// both). Unlike a port the kernel picked and let go, no outgoing connection can take it
/// before the peer binds it (baresip once failed so under load).
pub fn signal_port() -> u16 {
    signal_ports(1)
}

/// `count` consecutive signalling ports, free on UDP and TCP; the first is returned.
/// baresip listens on its `sip_listen` port for UDP and TCP and on the next one for TLS.
pub fn signal_ports(count: u16) -> u16 {
    let first = block() + ROUTER_PORTS * ROUTER_SLOTS + PEER_PORTS * PEER_SLOTS + WIDE_PORTS;
    for _ in 0..SIGNAL_SLOTS {
        // Consecutive slots from one counter step, never wrapping past the last slot.
        let slot = (SIGNALS.fetch_add(u32::from(count), Ordering::Relaxed)
            % u32::from(SIGNAL_SLOTS - count + 1)) as u16;
        let port = first + slot;
        let free = (port..port + count).all(|p| {
            std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return port;
        }
    }
    panic!(
        "no {count} free signalling ports in the test port block from {}",
        block()
    );
}

/// The block's wide RTP range: (min, max). One test of the binary may use it.
pub fn wide_rtp_range() -> (u16, u16) {
    let first = block() + ROUTER_PORTS * ROUTER_SLOTS + PEER_PORTS * PEER_SLOTS;
    (first, first + WIDE_PORTS - 2)
}

/// The held lock of this process's block (none when every block was taken).
static LOCK: OnceLock<File> = OnceLock::new();
static ROUTERS: AtomicU32 = AtomicU32::new(0);
static PEERS: AtomicU32 = AtomicU32::new(0);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

fn next(counter: &AtomicU32, slots: u16) -> u16 {
    (counter.fetch_add(1, Ordering::Relaxed) % u32::from(slots)) as u16
}

fn router_range(block: u16, slot: u16) -> (u16, u16) {
    let first = block + slot * ROUTER_PORTS;
    (first, first + ROUTER_PORTS - 2)
}

fn peer_port(block: u16, slot: u16) -> u16 {
    block + ROUTER_PORTS * ROUTER_SLOTS + slot * PEER_PORTS
}

/// The first port of this process's block, claimed once.
fn block() -> u16 {
    static BLOCK_START: OnceLock<u16> = OnceLock::new();
    *BLOCK_START.get_or_init(claim_block)
}

/// How many blocks fit below the ephemeral range.
fn block_count() -> u16 {
    let top = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| sas_router::media::ports::parse_port_range(&t))
        .map_or(LAST, |(low, _)| low.min(LAST));
    (top.saturating_sub(FIRST) / BLOCK).max(1)
}

fn lock_file(i: u16) -> std::io::Result<File> {
    let path = std::env::temp_dir().join(format!("sas-router-test-ports-{i}.lock"));
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Locks the first free block's file for the life of the process (the lock goes with it).
fn claim_block() -> u16 {
    let count = block_count();
    for i in 0..count {
        let Ok(file) = lock_file(i) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = LOCK.set(file);
            return FIRST + i * BLOCK;
        }
    }
    let i = (std::process::id() % u32::from(count)) as u16;
    eprintln!("every test port block is held by another test run: sharing block {i}");
    FIRST + i * BLOCK
}

#[test]
fn ranges_of_a_block_are_disjoint_and_below_the_ephemeral_ports() {
    let mut taken = vec![false; usize::from(u16::MAX) + 1];
    let mut claim = |from: u16, to: u16| {
        for p in from..=to {
            assert!(!taken[usize::from(p)], "port {p} handed out twice");
            taken[usize::from(p)] = true;
        }
    };
    for b in 0..block_count() {
        let start = FIRST + b * BLOCK;
        for slot in 0..ROUTER_SLOTS {
            let (min, max) = router_range(start, slot);
            // The router's pool takes even ports and the odd one above for RTCP.
            claim(min, max + 1);
        }
        for slot in 0..PEER_SLOTS {
            let port = peer_port(start, slot);
            claim(port, port + PEER_PORTS - 1);
        }
        let wide = start + ROUTER_PORTS * ROUTER_SLOTS + PEER_PORTS * PEER_SLOTS;
        claim(wide, wide + WIDE_PORTS - 1);
        claim(wide + WIDE_PORTS, wide + WIDE_PORTS + SIGNAL_SLOTS - 1);
    }
    let last = FIRST + block_count() * BLOCK;
    assert!(last <= LAST);
    if let Some((low, _)) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| sas_router::media::ports::parse_port_range(&t))
    {
        assert!(
            last <= low,
            "blocks end at {last}, ephemeral ports start at {low}"
        );
    }
    assert_eq!(ROUTER_PORTS % 2, 0, "router ranges start on even ports");
}

#[test]
fn another_test_run_cannot_take_this_runs_block() {
    let i = (block() - FIRST) / BLOCK;
    if LOCK.get().is_none() {
        eprintln!("sharing block {i}: every block is held by other test runs");
        return;
    }
    // What a second test process would try first for this block: the lock is held.
    let other = lock_file(i).unwrap();
    assert!(other.try_lock().is_err(), "block {i} is not locked");
}
