//! Loads `relay.bpf.o` (aya, embedded in the binary), attaches it to the media interface's tc
//! ingress through a TCX link (it belongs to this process: a crash leaves nothing attached),
//! and keeps the `legs` map.

use std::net::{IpAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError};

use aya::maps::{HashMap, MapData, RingBuf};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Ebpf, Pod, include_bytes_aligned};

use super::KernelError;
use super::records::{LegKey, LegVal};
use super::tap::{PERIOD, Taps};

/// The compiled program, aligned for the ELF parser.
static OBJECT: &[u8] = include_bytes_aligned!("relay.bpf.o");

// SAFETY: plain old data laid out as the C struct (8 bytes, no implicit padding), any bit
// pattern valid.
#[allow(unsafe_code)]
unsafe impl Pod for LegKey {}
// SAFETY: as above (88 bytes, no implicit padding, tested in `records`).
#[allow(unsafe_code)]
unsafe impl Pod for LegVal {}

/// The attached program and its `legs` map; every change of the map goes through here.
pub struct Legs {
    /// Owns the program and its link: kept for the life of the process.
    _ebpf: Mutex<Ebpf>,
    /// A `bpf()` call per operation, under the lock: map writes are rare (a call entering
    /// or leaving the kernel path), so one lock for every relay thread is enough.
    map: Mutex<HashMap<MapData, LegKey, LegVal>>,
    ifindex: u32,
    egress: u32,
    /// The recorded calls' queues, fed by the drainer thread.
    taps: Arc<Taps>,
}

impl Legs {
    /// Relays packets sent to `at` as `val` says, from now on.
    pub fn install(&self, at: SocketAddrV4, val: LegVal) -> Result<(), KernelError> {
        Ok(self.lock().insert(LegKey::new(at), val, 0)?)
    }

    /// The entry for `at`, with the kernel's counters.
    pub fn read(&self, at: SocketAddrV4) -> Option<LegVal> {
        self.lock().get(&LegKey::new(at), 0).ok()
    }

    /// Removes the entry for `at` (the next packet goes to the socket) and returns it as
    /// it was last read.
    pub fn remove(&self, at: SocketAddrV4) -> Option<LegVal> {
        let key = LegKey::new(at);
        let mut map = self.lock();
        let val = map.get(&key, 0).ok();
        map.remove(&key).ok()?;
        val
    }

    /// Where the recorded calls' packets come out.
    pub fn taps(&self) -> &Arc<Taps> {
        &self.taps
    }

    /// The interface the program is attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Where relayed packets are sent out: an interface's egress, or 0, handed back to the
    /// stack (see [`attach`]).
    pub fn egress(&self) -> u32 {
        self.egress
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MapData, LegKey, LegVal>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Loads the program and attaches it to the ingress of the interface of `ip` (loopback).
pub(super) fn attach(ip: IpAddr) -> Result<Legs, KernelError> {
    let interface = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "lo",
        _ => return Err(KernelError::NotLoopback(ip)),
    };
    let ifindex = nix::net::if_::if_nametoindex(interface)
        .map_err(|e| KernelError::Interface(interface, e))?;
    let mut ebpf = Ebpf::load(OBJECT)?;
    let program: &mut SchedClassifier = ebpf
        .program_mut("relay")
        .ok_or(KernelError::Missing("program relay"))?
        .try_into()?;
    program.load()?;
    program.attach(interface, TcAttachType::Ingress)?;
    let map = ebpf
        .take_map("legs")
        .ok_or(KernelError::Missing("map legs"))?;
    let ring = ebpf
        .take_map("tap")
        .ok_or(KernelError::Missing("map tap"))?;
    let mut ring = RingBuf::try_from(ring)?;
    let taps = Arc::new(Taps::default());
    let drained = Arc::clone(&taps);
    std::thread::Builder::new()
        .name("kernel-tap".into())
        .spawn(move || {
            loop {
                let batch = drained.batch();
                while let Some(record) = ring.next() {
                    batch.route(&record);
                }
                drop(batch);
                // The queues grow here and are emptied by the relay threads: the pages
                // they empty are this thread's to free (`heap`'s contract).
                _ = crate::heap::collect_before_waiting();
                std::thread::sleep(PERIOD);
            }
        })
        .map_err(KernelError::Drainer)?;
    Ok(Legs {
        map: Mutex::new(HashMap::try_from(map)?),
        _ebpf: Mutex::new(ebpf),
        ifindex,
        // On loopback a relayed packet is for this host: handed back to the stack, it is
        // delivered at once (the skb keeps its local route), where a redirect to lo's
        // egress would bring it through lo's ingress again, the program and a lookup that
        // misses included. A real interface will need the redirect (and a route).
        egress: 0,
        taps,
    })
}
