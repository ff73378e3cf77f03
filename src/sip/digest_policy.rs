//! Which digest algorithms a 401 offers: a list per transport (`[sip.digest]`), with a
//! per-seat override (`[[seats]] digest`). Pure data and checks, no I/O.
//!
//! The default is one `MD5` challenge on every transport, because that is the only offer
//! every seat client we ship for answers: JsSIP 3.13 and SIP.js 0.21 keep only the *last*
//! `WWW-Authenticate` they receive and know only MD5; libre 1.1 / baresip 1.0 answers the
//! *first* one and gives up on SHA-256; SIPp answers MD5. Lists are sent in the order given.
//!
//! A username the router does not know is challenged with the transport's list, exactly as
//! a seat without an override is, so a 401 does not reveal which users exist. A seat with an
//! override is distinguishable by its challenge; that is the price of the override.

use std::fmt;

use rsipstack::sip::Transport;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sip::digest::DigestAlgorithm;

impl Serialize for DigestAlgorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.token())
    }
}

impl<'de> Deserialize<'de> for DigestAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let token = String::deserialize(d)?;
        DigestAlgorithm::from_token(&token).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown digest algorithm `{token}` (expected \"MD5\" or \"SHA-256\")"
            ))
        })
    }
}

/// Why an algorithm list is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{transport}: the list is empty; give at least one of \"MD5\", \"SHA-256\"")]
    Empty { transport: &'static str },
    #[error("{transport}: {} is listed twice", algorithm.token())]
    Duplicate {
        transport: &'static str,
        algorithm: DigestAlgorithm,
    },
}

fn md5_only() -> Vec<DigestAlgorithm> {
    vec![DigestAlgorithm::Md5]
}

/// The algorithms offered, in order, on each transport (`[sip.digest]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportAlgorithms {
    #[serde(default = "md5_only")]
    pub udp: Vec<DigestAlgorithm>,
    #[serde(default = "md5_only")]
    pub tcp: Vec<DigestAlgorithm>,
    #[serde(default = "md5_only")]
    pub tls: Vec<DigestAlgorithm>,
    #[serde(default = "md5_only")]
    pub ws: Vec<DigestAlgorithm>,
    #[serde(default = "md5_only")]
    pub wss: Vec<DigestAlgorithm>,
}

impl Default for TransportAlgorithms {
    fn default() -> Self {
        Self::uniform(&md5_only())
    }
}

impl TransportAlgorithms {
    /// The same list on every transport.
    pub fn uniform(list: &[DigestAlgorithm]) -> Self {
        Self {
            udp: list.to_vec(),
            tcp: list.to_vec(),
            tls: list.to_vec(),
            ws: list.to_vec(),
            wss: list.to_vec(),
        }
    }

    /// The list for a request that arrived over `transport` (SCTP counts as its
    /// stream/TLS sibling; we do not listen on it).
    pub fn for_transport(&self, transport: Transport) -> &[DigestAlgorithm] {
        match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp | Transport::Sctp => &self.tcp,
            Transport::Tls | Transport::TlsSctp => &self.tls,
            Transport::Ws => &self.ws,
            Transport::Wss => &self.wss,
        }
    }

    /// Every (transport key, list).
    pub fn lists(&self) -> [(&'static str, &[DigestAlgorithm]); 5] {
        [
            ("udp", &self.udp),
            ("tcp", &self.tcp),
            ("tls", &self.tls),
            ("ws", &self.ws),
            ("wss", &self.wss),
        ]
    }

    /// Every list is non-empty and names each algorithm once.
    pub fn check(&self) -> Result<(), PolicyError> {
        for (transport, list) in self.lists() {
            if list.is_empty() {
                return Err(PolicyError::Empty { transport });
            }
            for (i, algorithm) in list.iter().enumerate() {
                if list[..i].contains(algorithm) {
                    return Err(PolicyError::Duplicate {
                        transport,
                        algorithm: *algorithm,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A seat's override: one list for every transport (`digest = ["SHA-256", "MD5"]`) or some
/// transports only (`digest = { tls = ["SHA-256"] }`, the others keep `[sip.digest]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatDigest {
    All(Vec<DigestAlgorithm>),
    PerTransport(PartialAlgorithms),
}

/// Some transports' lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialAlgorithms {
    pub udp: Option<Vec<DigestAlgorithm>>,
    pub tcp: Option<Vec<DigestAlgorithm>>,
    pub tls: Option<Vec<DigestAlgorithm>>,
    pub ws: Option<Vec<DigestAlgorithm>>,
    pub wss: Option<Vec<DigestAlgorithm>>,
}

impl SeatDigest {
    /// The seat's lists, falling back to `defaults` where the override is silent.
    pub fn resolve(&self, defaults: &TransportAlgorithms) -> TransportAlgorithms {
        match self {
            Self::All(list) => TransportAlgorithms::uniform(list),
            Self::PerTransport(p) => {
                let pick = |own: &Option<Vec<_>>, default: &Vec<_>| {
                    own.clone().unwrap_or_else(|| default.clone())
                };
                TransportAlgorithms {
                    udp: pick(&p.udp, &defaults.udp),
                    tcp: pick(&p.tcp, &defaults.tcp),
                    tls: pick(&p.tls, &defaults.tls),
                    ws: pick(&p.ws, &defaults.ws),
                    wss: pick(&p.wss, &defaults.wss),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for SeatDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SeatDigestVisitor;
        impl<'de> Visitor<'de> for SeatDigestVisitor {
            type Value = SeatDigest;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a list of algorithms (\"MD5\", \"SHA-256\") or a table of such lists \
                     keyed by udp, tcp, tls, ws, wss",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SeatDigest, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(SeatDigest::All)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SeatDigest, A::Error> {
                PartialAlgorithms::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(SeatDigest::PerTransport)
            }
        }
        d.deserialize_any(SeatDigestVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DigestAlgorithm::{Md5, Sha256};

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(default)]
        digest: TransportAlgorithms,
        seat: Option<SeatDigest>,
    }

    fn doc(text: &str) -> Result<Doc, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn default_is_one_md5_challenge_everywhere() {
        let d = TransportAlgorithms::default();
        for t in [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ] {
            assert_eq!(d.for_transport(t), [Md5]);
        }
        assert_eq!(doc("").unwrap().digest, d);
        assert_eq!(d.check(), Ok(()));
    }

    #[test]
    fn transport_lists_keep_their_order_and_others_default() {
        let d = doc("[digest]\nudp = [\"SHA-256\", \"MD5\"]\nwss = [\"sha-256\"]\n")
            .unwrap()
            .digest;
        assert_eq!(d.for_transport(Transport::Udp), [Sha256, Md5]);
        assert_eq!(d.for_transport(Transport::Wss), [Sha256]);
        assert_eq!(d.for_transport(Transport::Tcp), [Md5]);
        assert_eq!(d.for_transport(Transport::Ws), [Md5]);
    }

    #[test]
    fn seat_override_as_list_or_table() {
        let defaults = TransportAlgorithms::uniform(&[Md5]);
        let all = doc("seat = [\"SHA-256\", \"MD5\"]").unwrap().seat.unwrap();
        assert_eq!(
            all.resolve(&defaults),
            TransportAlgorithms::uniform(&[Sha256, Md5])
        );
        let some = doc("seat = { tls = [\"SHA-256\"] }").unwrap().seat.unwrap();
        let resolved = some.resolve(&defaults);
        assert_eq!(resolved.for_transport(Transport::Tls), [Sha256]);
        assert_eq!(resolved.for_transport(Transport::Udp), [Md5]);
    }

    #[test]
    fn bad_lists_are_refused_clearly() {
        let err = doc("[digest]\nudp = [\"SHA-512\"]").unwrap_err();
        assert!(err.contains("unknown digest algorithm `SHA-512`"), "{err}");
        let err = doc("[digest]\nsctp = [\"MD5\"]").unwrap_err();
        assert!(err.contains("sctp"), "{err}");
        let err = doc("seat = \"MD5\"").unwrap_err();
        assert!(err.contains("a list of algorithms"), "{err}");
        let err = doc("seat = { udp = [\"MD4\"] }").unwrap_err();
        assert!(err.contains("MD4"), "{err}");

        let empty = doc("[digest]\nws = []").unwrap().digest;
        assert_eq!(empty.check(), Err(PolicyError::Empty { transport: "ws" }));
        let twice = doc("[digest]\ntcp = [\"MD5\", \"md5\"]").unwrap().digest;
        assert_eq!(
            twice.check().unwrap_err().to_string(),
            "tcp: MD5 is listed twice"
        );
    }
}
