//! The records of the `legs` map, mirrored from `relay.bpf.c`: plain std, no aya, so the
//! layout tests run in every build and the prototype loader (`loadtest/kernel_relay`)
//! includes this file by path instead of keeping a second copy.

use std::net::SocketAddrV4;

/// Copy the packet's payload to the recorder's ring buffer (`tap`).
pub const LEG_TAP: u32 = 1;
/// Swap the Ethernet addresses: the packet goes back out of the interface it came in on
/// (a peer behind a veth or a NIC; not needed on loopback).
pub const LEG_SWAP_MAC: u32 = 2;
/// An RTP leg of the router: only its payload type and SSRC are relayed, renumbered.
pub const LEG_RTP: u32 = 4;

/// `struct leg_key`: where a packet was sent (the relay's socket), network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegKey {
    addr: u32,
    port: u16,
    pad: u16,
}

impl LegKey {
    pub fn new(at: SocketAddrV4) -> Self {
        LegKey {
            addr: u32::from_ne_bytes(at.ip().octets()),
            port: at.port().to_be(),
            pad: 0,
        }
    }
}

/// Where a hit goes: out of `from` (the relay's socket for the other leg) to `to` (that
/// leg's peer), accepted only from `source` (this leg's latched peer), redirected to
/// `ifindex`'s egress (0: handed back to the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub source: SocketAddrV4,
    pub ifindex: u32,
}

/// The RTP checks and renumbering of a router leg ([`LEG_RTP`]): what the relay thread's
/// stream towards the other leg does to each packet, as offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renumber {
    pub payload_type: u8,
    pub ssrc_in: u32,
    pub ssrc_out: u32,
    pub seq_offset: u16,
    pub ts_offset: u32,
}

/// `struct leg_val`: the rewrite, and what the program writes back (counters, the last
/// packet's time and numbering). 88 bytes, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegVal {
    src_addr: u32,
    dst_addr: u32,
    src_port: u16,
    dst_port: u16,
    ifindex: u32,
    peer_addr: u32,
    peer_port: u16,
    payload_type: u8,
    pad0: u8,
    ssrc_in: u32,
    ssrc_out: u32,
    ts_offset: u32,
    seq_offset: u16,
    pad1: u16,
    tap_id: u32,
    flags: u32,
    /// Relayed by the kernel.
    pub packets: u64,
    /// Their UDP payload (the RTP packet), bytes.
    pub bytes: u64,
    /// Payloads lost because the tap ring buffer was full.
    pub tap_drops: u64,
    /// `CLOCK_MONOTONIC` of the last packet relayed, ns (0: none).
    pub last_seen: u64,
    /// [`LEG_RTP`]: the furthest timestamp and sequence number sent.
    pub last_ts: u32,
    pub last_seq: u16,
    pad2: u16,
}

impl LegVal {
    /// `route`, renumbered as `rtp` says (a router leg), with `flags` ([`LEG_SWAP_MAC`]).
    pub fn new(route: Route, rtp: Option<Renumber>, flags: u32) -> Self {
        let ip = |a: SocketAddrV4| u32::from_ne_bytes(a.ip().octets());
        let r = rtp.unwrap_or(Renumber {
            payload_type: 0,
            ssrc_in: 0,
            ssrc_out: 0,
            seq_offset: 0,
            ts_offset: 0,
        });
        LegVal {
            src_addr: ip(route.from),
            dst_addr: ip(route.to),
            src_port: route.from.port().to_be(),
            dst_port: route.to.port().to_be(),
            ifindex: route.ifindex,
            peer_addr: ip(route.source),
            peer_port: route.source.port().to_be(),
            payload_type: r.payload_type,
            ssrc_in: r.ssrc_in.to_be(),
            ssrc_out: r.ssrc_out.to_be(),
            ts_offset: r.ts_offset,
            seq_offset: r.seq_offset,
            flags: flags | if rtp.is_some() { LEG_RTP } else { 0 },
            ..LegVal::default()
        }
    }

    /// The same, each packet also copied to the tap ring buffer as stream `id`.
    pub fn tapped(self, id: u32) -> Self {
        LegVal {
            tap_id: id,
            flags: self.flags | LEG_TAP,
            ..self
        }
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &LegVal) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tap_drops += other.tap_drops;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(size_of::<LegKey>(), 8);
        assert_eq!(size_of::<LegVal>(), 88);
        assert_eq!(offset_of!(LegVal, peer_addr), 16);
        assert_eq!(offset_of!(LegVal, payload_type), 22);
        assert_eq!(offset_of!(LegVal, ssrc_in), 24);
        assert_eq!(offset_of!(LegVal, seq_offset), 36);
        assert_eq!(offset_of!(LegVal, flags), 44);
        assert_eq!(offset_of!(LegVal, packets), 48);
        assert_eq!(offset_of!(LegVal, last_seen), 72);
        assert_eq!(offset_of!(LegVal, last_ts), 80);
        assert_eq!(offset_of!(LegVal, last_seq), 84);
    }

    #[test]
    fn addresses_and_rtp_fields_are_in_network_order_offsets_in_host_order() {
        let k = LegKey::new("127.0.0.1:30000".parse().unwrap());
        assert_eq!(k.addr.to_ne_bytes(), [127, 0, 0, 1]);
        assert_eq!(k.port.to_ne_bytes(), 30000u16.to_be_bytes());
        let route = Route {
            from: "127.0.0.1:30002".parse().unwrap(),
            to: "127.1.0.7:9600".parse().unwrap(),
            source: "127.1.0.8:9700".parse().unwrap(),
            ifindex: 1,
        };
        let rtp = Renumber {
            payload_type: 8,
            ssrc_in: 0x0102_0304,
            ssrc_out: 0x0a0b_0c0d,
            seq_offset: 0x1234,
            ts_offset: 0x5678_9abc,
        };
        let v = LegVal::new(route, Some(rtp), 0).tapped(5);
        assert_eq!(v.dst_addr.to_ne_bytes(), [127, 1, 0, 7]);
        assert_eq!(v.dst_port.to_ne_bytes(), 9600u16.to_be_bytes());
        assert_eq!(v.peer_addr.to_ne_bytes(), [127, 1, 0, 8]);
        assert_eq!(v.peer_port.to_ne_bytes(), 9700u16.to_be_bytes());
        // Compared with the packet's bytes as they are.
        assert_eq!(v.ssrc_in.to_ne_bytes(), [1, 2, 3, 4]);
        assert_eq!(v.ssrc_out.to_ne_bytes(), [0x0a, 0x0b, 0x0c, 0x0d]);
        // Added after ntohs/ntohl.
        assert_eq!((v.seq_offset, v.ts_offset), (0x1234, 0x5678_9abc));
        assert_eq!((v.tap_id, v.flags), (5, LEG_TAP | LEG_RTP));
        let plain = LegVal::new(route, None, LEG_SWAP_MAC);
        assert_eq!(plain.flags, LEG_SWAP_MAC);
    }
}
