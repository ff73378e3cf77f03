//! Who sent a request: the trunk, or a seat. Decided from the packet source and, behind a
//! proxy, from the marker the proxy adds.
//!
//! Without a proxy the source says it all: the trunk's addresses (`[trunk] addresses`) send
//! trunk calls, anyone else is a seat (digest-authenticated). Behind Kamailio every request
//! comes from the proxy's address (`[edge] addresses`), the trunk's calls and the seats'
//! alike; the proxy adds [`MARKER`] (`X-SAS-Origin: trunk`) to what it relays from the
//! trunk's addresses, and removes any such header from everything else, so a seat cannot
//! forge it. A proxy's request carrying the marker is the trunk's, any other is a seat's.
//! The marker is honoured from a proxy address only: from anywhere else it means nothing.

use std::net::IpAddr;

/// The marker header's name (matched case-insensitively).
pub const MARKER: &str = "X-SAS-Origin";
/// The marker header's value for requests from the trunk.
pub const MARKER_TRUNK: &str = "trunk";

/// Where a request comes from, as far as admission, bans and overload control go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The trunk, straight from one of its addresses.
    Trunk,
    /// The trunk, relayed by a proxy that marked it.
    TrunkViaEdge,
    /// A seat (or anyone who must authenticate as one), straight.
    Seat,
    /// A seat, relayed by a proxy (no marker).
    SeatViaEdge,
}

impl Origin {
    /// The trunk's: entry numbers, no digest.
    pub fn is_trunk(self) -> bool {
        matches!(self, Origin::Trunk | Origin::TrunkViaEdge)
    }

    /// The source is a trusted peer (the trunk or a proxy): never banned nor limited by
    /// source address, since that would cut every call behind it.
    pub fn trusted_source(self) -> bool {
        !matches!(self, Origin::Seat)
    }
}

/// The peers a node trusts: the trunk's and the proxies' addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    /// `[trunk] addresses`.
    pub trunk: Vec<IpAddr>,
    /// `[edge] addresses`: SIP proxies (Kamailio) in front of this node.
    pub edge: Vec<IpAddr>,
}

impl Peers {
    /// The origin of a request from `source`; `marked`: it carries `X-SAS-Origin: trunk`.
    /// A proxy address is judged by the marker even if it is also listed as the trunk
    /// (configuration refuses that overlap; this keeps the safe reading if it happens).
    pub fn origin(&self, source: IpAddr, marked: bool) -> Origin {
        if self.edge.contains(&source) {
            return match marked {
                true => Origin::TrunkViaEdge,
                false => Origin::SeatViaEdge,
            };
        }
        match self.trunk.contains(&source) {
            true => Origin::Trunk,
            false => Origin::Seat,
        }
    }

    /// Whether `source` is the trunk's or a proxy's (never banned, never rate-limited).
    pub fn trusted(&self, source: IpAddr) -> bool {
        self.edge.contains(&source) || self.trunk.contains(&source)
    }

    /// Both lists, for the places that only exempt sources.
    pub fn all(&self) -> impl Iterator<Item = &IpAddr> {
        self.trunk.iter().chain(&self.edge)
    }
}

/// Whether one header (`name`, `value`) is the trunk marker.
pub fn is_marker(name: &str, value: &str) -> bool {
    name.trim().eq_ignore_ascii_case(MARKER) && value.trim().eq_ignore_ascii_case(MARKER_TRUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn peers() -> Peers {
        Peers {
            trunk: vec![ip("192.0.2.1")],
            edge: vec![ip("10.0.0.10"), ip("10.0.0.11")],
        }
    }

    #[test]
    fn behind_a_proxy_the_marker_decides_and_elsewhere_it_means_nothing() {
        let p = peers();
        assert_eq!(p.origin(ip("10.0.0.10"), true), Origin::TrunkViaEdge);
        assert_eq!(p.origin(ip("10.0.0.11"), false), Origin::SeatViaEdge);
        // Straight from the trunk: the trunk, marker or not.
        assert_eq!(p.origin(ip("192.0.2.1"), false), Origin::Trunk);
        // A seat that forges the marker is still a seat.
        assert_eq!(p.origin(ip("192.168.1.20"), true), Origin::Seat);
        assert!(Origin::TrunkViaEdge.is_trunk() && !Origin::SeatViaEdge.is_trunk());
        assert!(Origin::SeatViaEdge.trusted_source() && !Origin::Seat.trusted_source());
        assert!(p.trusted(ip("10.0.0.11")) && !p.trusted(ip("192.168.1.20")));
    }

    #[test]
    fn a_proxy_also_listed_as_the_trunk_is_judged_by_the_marker() {
        let p = Peers {
            trunk: vec![ip("10.0.0.10")],
            edge: vec![ip("10.0.0.10")],
        };
        assert_eq!(p.origin(ip("10.0.0.10"), false), Origin::SeatViaEdge);
    }

    #[test]
    fn the_marker_is_matched_without_regard_to_case_or_spaces() {
        assert!(is_marker("x-sas-origin", " Trunk "));
        assert!(!is_marker("X-SAS-Origin", "seat"));
        assert!(!is_marker("X-SAS-Origins", "trunk"));
    }
}
