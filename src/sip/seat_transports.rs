//! Which transports a seat may use (`[[seats]] transports`, e.g. `["tls"]` for a remote
//! regulator): a REGISTER or an INVITE of that seat arriving over another is refused with
//! a 403 naming what is required, before any challenge, so that no digest response of it
//! ever crosses an unencrypted network. Pure data, no I/O.
//!
//! The refusal makes such a seat's name distinguishable from others' over the transports
//! it may not use (an unknown name is challenged); that is the price of the restriction,
//! as with a seat's own digest list ([`crate::sip::digest_policy`]).

use rsipstack::sip::{StatusCode, Transport};
use serde::Deserialize;

/// A transport a seat may be restricted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatTransport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS (`[sip] tls`).
    Tls,
    /// SIP over WebSocket.
    Ws,
    /// SIP over secure WebSocket.
    Wss,
}

impl SeatTransport {
    /// Whether a request that arrived over `transport` used this one.
    pub fn carries(self, transport: Transport) -> bool {
        matches!(
            (self, transport),
            (Self::Udp, Transport::Udp)
                | (Self::Tcp, Transport::Tcp)
                | (Self::Tls, Transport::Tls)
                | (Self::Ws, Transport::Ws)
                | (Self::Wss, Transport::Wss)
        )
    }

    /// The name in upper case, as in a Via.
    pub fn token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Ws => "WS",
            Self::Wss => "WSS",
        }
    }
}

/// The refusal of a request over `transport` by a seat allowed `allowed` only (`None`:
/// every transport): `403 Forbidden (TLS required)`.
pub fn refusal(allowed: Option<&[SeatTransport]>, transport: Transport) -> Option<StatusCode> {
    let allowed = allowed?;
    if allowed.iter().any(|t| t.carries(transport)) {
        return None;
    }
    let names: Vec<&str> = allowed.iter().map(|t| t.token()).collect();
    let reason = format!("Forbidden ({} required)", names.join(" or "));
    Some(StatusCode::Other(403, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_restricted_to_tls_is_refused_elsewhere_with_the_reason() {
        let tls = [SeatTransport::Tls];
        assert_eq!(refusal(Some(&tls), Transport::Tls), None);
        assert_eq!(refusal(None, Transport::Udp), None);
        let refused = refusal(Some(&tls), Transport::Udp).unwrap();
        assert_eq!(refused.code(), 403);
        assert_eq!(refused.to_string(), "403 Forbidden (TLS required)");
        let secure = [SeatTransport::Tls, SeatTransport::Wss];
        assert_eq!(refusal(Some(&secure), Transport::Wss), None);
        let refused = refusal(Some(&secure), Transport::Tcp).unwrap();
        assert!(
            refused.to_string().contains("TLS or WSS required"),
            "{refused}"
        );
    }
}
