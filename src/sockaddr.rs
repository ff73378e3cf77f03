//! The one conversion the batched UDP readers share (the SIP guard's and the RTP relay
//! threads' `recvmmsg`): a source address as the kernel wrote it, as std's.

use nix::sys::socket::SockaddrStorage;
use std::net::SocketAddr;

/// `sa` as an IPv4 or IPv6 socket address; `None` for any other family.
pub fn socket_addr(sa: SockaddrStorage) -> Option<SocketAddr> {
    match (sa.as_sockaddr_in(), sa.as_sockaddr_in6()) {
        (Some(v4), _) => Some(SocketAddr::from(*v4)),
        (_, Some(v6)) => Some(SocketAddr::from(*v6)),
        _ => None,
    }
}
