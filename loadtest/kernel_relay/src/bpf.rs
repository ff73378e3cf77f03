//! The BPF side: loads `bpf/relay.bpf.o` (checked in, rebuilt by `build-bpf.sh`), attaches
//! it to an interface's tc ingress (TCX: the link goes away with this process), and keeps the
//! `legs` map: one entry per relayed port, what its packets are rewritten to.

use std::net::SocketAddrV4;

use anyhow::Context;
use aya::maps::{HashMap, MapData, RingBuf};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Ebpf, Pod, include_bytes_aligned};

/// The compiled program, aligned for the ELF parser.
static OBJECT: &[u8] = include_bytes_aligned!("../bpf/relay.bpf.o");

/// Copy the packet's payload to the recorder's ring buffer.
pub const LEG_TAP: u32 = 1;
/// Swap the Ethernet addresses: the packet goes back out of the interface it came in on
/// (a peer behind a veth or a NIC; not needed on loopback).
pub const LEG_SWAP_MAC: u32 = 2;

/// `struct leg_key` of relay.bpf.c: where a packet was sent, network order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LegKey {
    addr: u32,
    port: u16,
    pad: u16,
}

// SAFETY: plain old data, no padding (4 + 2 + 2 bytes), any bit pattern valid.
unsafe impl Pod for LegKey {}

impl LegKey {
    pub fn new(at: SocketAddrV4) -> Self {
        LegKey {
            addr: u32::from_ne_bytes(at.ip().octets()),
            port: at.port().to_be(),
            pad: 0,
        }
    }
}

/// `struct leg_val` of relay.bpf.c: the rewrite, and the kernel's counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LegVal {
    src_addr: u32,
    dst_addr: u32,
    src_port: u16,
    dst_port: u16,
    ifindex: u32,
    tap_id: u32,
    flags: u32,
    pub packets: u64,
    pub bytes: u64,
    pub tap_drops: u64,
}

// SAFETY: plain old data laid out as the C struct (48 bytes, no implicit padding).
unsafe impl Pod for LegVal {}

impl LegVal {
    /// Packets to this leg go out from `from` (the relay's port for the other leg) to `to`,
    /// redirected to `ifindex`'s egress (0: handed back to the stack), with `flags`
    /// ([`LEG_SWAP_MAC`]) and the tap when `tap` names a stream.
    pub fn new(
        from: SocketAddrV4,
        to: SocketAddrV4,
        ifindex: u32,
        flags: u32,
        tap: Option<u32>,
    ) -> Self {
        LegVal {
            src_addr: u32::from_ne_bytes(from.ip().octets()),
            dst_addr: u32::from_ne_bytes(to.ip().octets()),
            src_port: from.port().to_be(),
            dst_port: to.port().to_be(),
            ifindex,
            tap_id: tap.unwrap_or(0),
            flags: flags | if tap.is_some() { LEG_TAP } else { 0 },
            ..LegVal::default()
        }
    }
}

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

impl LegVal {
    pub fn add(&mut self, other: &LegVal) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tap_drops += other.tap_drops;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<LegKey>(), 8);
        assert_eq!(std::mem::size_of::<LegVal>(), 48);
    }

    #[test]
    fn keys_and_rewrites_are_in_network_order() {
        let k = LegKey::new("127.0.0.1:30000".parse().unwrap());
        assert_eq!(k.addr.to_ne_bytes(), [127, 0, 0, 1]);
        assert_eq!(k.port.to_ne_bytes(), 30000u16.to_be_bytes());
        let v = LegVal::new(
            "127.0.0.1:30002".parse().unwrap(),
            "127.1.0.7:9600".parse().unwrap(),
            1,
            0,
            Some(5),
        );
        assert_eq!(v.dst_addr.to_ne_bytes(), [127, 1, 0, 7]);
        assert_eq!(v.dst_port.to_ne_bytes(), 9600u16.to_be_bytes());
        assert_eq!((v.tap_id, v.flags), (5, LEG_TAP));
    }
}
