//! The BPF side: loads the router's `src/media/kernel/relay.bpf.o` (checked in, rebuilt by
//! `src/media/kernel/build-bpf.sh`), attaches
//! it to an interface's tc ingress (TCX: the link goes away with this process), and keeps the
//! `legs` map: one entry per relayed port, what its packets are rewritten to.

use std::net::SocketAddrV4;

use anyhow::Context;
use aya::maps::{HashMap, MapData, RingBuf};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Ebpf, Pod, include_bytes_aligned};

/// The compiled program (the router's, src/media/kernel), aligned for the ELF parser.
static OBJECT: &[u8] = include_bytes_aligned!("../../../src/media/kernel/relay.bpf.o");

// The map records are the router's, shared by path rather than copied (their layout tests
// run in the router's build).
#[path = "../../../src/media/kernel/records.rs"]
#[allow(dead_code)]
mod records;
pub use records::{LEG_SWAP_MAC, LegKey, LegVal, Route};

// SAFETY: plain old data laid out as the C struct (8 bytes, no implicit padding), any bit
// pattern valid.
unsafe impl Pod for LegKey {}
// SAFETY: as above (88 bytes, no implicit padding).
unsafe impl Pod for LegVal {}

/// The loaded, attached program and its maps.
pub struct Relay {
    /// Owns the program and its TCX link: dropping it detaches.
    _ebpf: Ebpf,
    legs: HashMap<MapData, LegKey, LegVal>,
}

impl Relay {
    /// Loads the program and attaches it to `interface`'s ingress; the tap ring buffer is
    /// returned apart so another thread can drain it.
    pub fn attach(interface: &str) -> anyhow::Result<(Self, RingBuf<MapData>)> {
        let mut ebpf = Ebpf::load(OBJECT).context("loading relay.bpf.o (bpf() refused?)")?;
        let program: &mut SchedClassifier = ebpf
            .program_mut("relay")
            .context("no program `relay` in the object")?
            .try_into()?;
        program.load().context("the verifier refused the program")?;
        program
            .attach(interface, TcAttachType::Ingress)
            .with_context(|| format!("attaching to {interface}'s tc ingress"))?;
        let legs = HashMap::try_from(ebpf.take_map("legs").context("no map `legs`")?)?;
        let tap = RingBuf::try_from(ebpf.take_map("tap").context("no map `tap`")?)?;
        Ok((Relay { _ebpf: ebpf, legs }, tap))
    }

    pub fn install(&mut self, at: SocketAddrV4, val: LegVal) -> anyhow::Result<()> {
        Ok(self.legs.insert(LegKey::new(at), val, 0)?)
    }

    /// Removes a leg; its counters, if it was there.
    pub fn remove(&mut self, at: SocketAddrV4) -> Option<LegVal> {
        let key = LegKey::new(at);
        let val = self.legs.get(&key, 0).ok();
        self.legs.remove(&key).ok();
        val
    }

    /// Counters of every installed leg, summed.
    pub fn totals(&self) -> LegVal {
        let mut sum = LegVal::default();
        for v in self.legs.iter().flatten().map(|(_, v)| v) {
            sum.add(&v);
        }
        sum
    }
}
