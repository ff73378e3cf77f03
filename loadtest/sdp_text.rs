//! SDP text helpers shared by the media load tools (`mediagen`, `kernel_relay`'s ng server).
//! Each includes this file as a module (`#[path]`), as it does `bencode.rs`.

use std::net::SocketAddrV4;

/// The audio address of an SDP body (in a SIP message or alone): `c=` and `m=audio`.
pub fn sdp_media(text: &str) -> Option<SocketAddrV4> {
    let ip = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddrV4::new(ip, port))
}
