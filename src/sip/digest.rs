//! Server side SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! Owns the HA1-only credential type, the digest computation, and [`NonceStore`]: the
//! sans-IO stateless nonces (issue, challenge, verify with replay protection). Clear
//! passwords never reach this module except in [`ha1`], used to produce config entries.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use md5::Md5;
use rand::RngCore;
use rsipstack::sip::Method;
use rsipstack::sip::headers::typed::tokenizers::AuthTokenizer;
use sha2::{Digest, Sha256};

use crate::sip::digest_policy::TransportAlgorithms;
use crate::time::EpochMillis;

/// Hash algorithm of a digest exchange. `-sess` variants are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    /// The `algorithm=` token as sent on the wire.
    pub fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm=` token (case-insensitive); `None` for anything unsupported.
    pub fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex hash of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// A seat's stored credentials: HA1 = H(username:realm:password), lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCredential {
    pub username: String,
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
    /// The seat's own challenge lists (`[[seats]] digest`); `None`: the transport defaults.
    pub algorithms: Option<TransportAlgorithms>,
    /// The transports the seat may use (`[[seats]] transports`); `None`: any.
    pub transports: Option<Vec<crate::sip::seat_transports::SeatTransport>>,
}

impl SeatCredential {
    /// The HA1 matching `algorithm`, if provisioned.
    pub fn ha1_for(&self, algorithm: DigestAlgorithm) -> Option<&str> {
        match algorithm {
            DigestAlgorithm::Md5 => self.ha1_md5.as_deref(),
            DigestAlgorithm::Sha256 => self.ha1_sha256.as_deref(),
        }
    }

    /// The same seat answerable only with `offered`: a response with an algorithm we did
    /// not challenge with is refused (no downgrade to MD5 where only SHA-256 is offered).
    pub fn restricted_to(mut self, offered: &[DigestAlgorithm]) -> Self {
        if !offered.contains(&DigestAlgorithm::Md5) {
            self.ha1_md5 = None;
        }
        if !offered.contains(&DigestAlgorithm::Sha256) {
            self.ha1_sha256 = None;
        }
        self
    }
}

/// HA1 = H(username:realm:password), for producing [`SeatCredential`] config entries.
pub fn ha1(algorithm: DigestAlgorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// The `qop=auth` part of a digest response: nonce-count as sent (8 hex digits) and cnonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// The expected `response=` value from HA1 (RFC 7616 §3.4.1). `qop: None` is the RFC 2069
/// form H(HA1:nonce:HA2); with `qop=auth` it is H(HA1:nonce:nc:cnonce:auth:HA2).
pub fn compute_response(
    algorithm: DigestAlgorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<QopAuth<'_>>,
) -> String {
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    match qop {
        Some(q) => algorithm.hash(&format!("{ha1}:{nonce}:{}:{}:auth:{ha2}", q.nc, q.cnonce)),
        None => algorithm.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Why an Authorization header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed Authorization header")]
    Malformed,
    #[error("realm does not match ours")]
    WrongRealm,
    #[error("nonce never issued or already forgotten")]
    UnknownNonce,
    #[error("nonce expired")]
    StaleNonce,
    #[error("nonce-count replayed")]
    Replay,
    #[error("unknown user")]
    UnknownUser,
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    #[error("wrong password")]
    WrongPassword,
}

/// Replay state of a nonce that has authenticated a request.
#[derive(Debug, Clone)]
struct Accepted {
    issued_at: EpochMillis,
    /// Highest nc accepted with qop=auth (0: none yet).
    last_nc: u32,
    /// Already consumed by a qop-less (RFC 2069) response, which has no counter.
    used_without_qop: bool,
}

/// Length of a nonce: 16 hex digits of issue time, 16 of salt, then 32 of its MAC.
const NONCE_LEN: usize = 64;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Stateless digest nonces; sans-IO, time is passed in.
///
/// A nonce is `issue time ‖ salt ‖ HMAC-SHA256(secret, issue time ‖ salt ‖ source IP)`
/// (the salt: two phones behind one NAT challenged in the same millisecond get different
/// nonces, so one's replay state never refuses the other's first answer): the router can
/// tell one it issued, to that address, and its age, without remembering it, so an
/// unauthenticated REGISTER or INVITE costs no memory however many arrive. The source is
/// the IP only (a NAT may change the port between two requests). A nonce is valid for
/// `lifetime_ms`, then answered with [`AuthError::StaleNonce`] (the UA re-authenticates
/// silently). Replay protection needs state, but only for nonces that have *authenticated*
/// a request (which takes a seat's password): at most `max_entries`, each forgotten once its
/// nonce is stale, checked as new ones are added (no timer).
#[derive(Debug)]
pub struct NonceStore {
    secret: [u8; 32],
    lifetime_ms: u64,
    max_entries: usize,
    accepted: HashMap<String, Accepted>,
    /// Accepted nonces, oldest first.
    order: VecDeque<String>,
}

impl NonceStore {
    /// Nonces signed with `secret` (see [`NonceStore::random_secret`]).
    pub fn new(secret: [u8; 32], lifetime_ms: u64, max_entries: usize) -> Self {
        Self {
            secret,
            lifetime_ms,
            max_entries: max_entries.max(1),
            accepted: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// 256 random bits for [`NonceStore::new`].
    pub fn random_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        secret
    }

    /// Number of nonces remembered for replay protection (authenticated ones only).
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// A nonce for a client at `source`, issued at `now`. Nothing is remembered.
    pub fn issue(&self, now: EpochMillis, source: IpAddr) -> String {
        let stamp = format!("{now:016x}{:016x}", rand::thread_rng().next_u64());
        format!("{stamp}{}", self.mac(&stamp, source))
    }

    fn mac(&self, stamp: &str, source: IpAddr) -> String {
        use hmac::Mac;
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(stamp.as_bytes());
        mac.update(source.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// When `nonce` was issued, if this router issued it to `source`.
    fn issued_at(&self, nonce: &str, source: IpAddr) -> Option<EpochMillis> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return None;
        }
        let (stamp, mac) = nonce.split_at(32);
        let expected = self.mac(stamp, source);
        if !constant_time_eq(&expected, &mac.to_ascii_lowercase()) {
            return None;
        }
        u64::from_str_radix(&stamp[..16], 16).ok()
    }

    /// WWW-Authenticate header values for a 401, one per algorithm in the order given
    /// (RFC 8760 §2.4), sharing one fresh nonce.
    pub fn challenge(
        &self,
        now: EpochMillis,
        source: IpAddr,
        realm: &str,
        stale: bool,
        algorithms: &[DigestAlgorithm],
    ) -> Vec<String> {
        let nonce = self.issue(now, source);
        algorithms
            .iter()
            .map(|alg| {
                let mut v = format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    alg.token()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Checks a raw Authorization header value from `source`; returns the authenticated
    /// username.
    ///
    /// The replay state only advances on success, so failed guesses cannot burn counters.
    /// An unknown user costs the same hash as a known one (no timing difference).
    pub fn verify(
        &mut self,
        now: EpochMillis,
        source: IpAddr,
        realm: &str,
        method: &Method,
        raw_authorization_header_value: &str,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> Result<String, AuthError> {
        let p = Params::parse(raw_authorization_header_value)?;
        if p.realm != realm {
            return Err(AuthError::WrongRealm);
        }
        let algorithm = match p.algorithm {
            None => DigestAlgorithm::Md5,
            Some(t) => DigestAlgorithm::from_token(t).ok_or(AuthError::UnsupportedAlgorithm)?,
        };
        let issued_at = self
            .issued_at(p.nonce, source)
            .filter(|&t| t <= now.saturating_add(self.lifetime_ms))
            .ok_or(AuthError::UnknownNonce)?;
        if now.saturating_sub(issued_at) >= self.lifetime_ms {
            return Err(AuthError::StaleNonce);
        }
        let cred = lookup(p.username);
        let ha1 = match &cred {
            Some(cred) => Some(
                cred.ha1_for(algorithm)
                    .ok_or(AuthError::UnsupportedAlgorithm)?,
            ),
            None => None,
        };
        let qop = p.qop.map(|(nc, cnonce)| QopAuth { nc, cnonce });
        // A stand-in HA1 for an unknown name: the same work, then the same refusal.
        let stand_in = algorithm.hash(p.username);
        let expected = compute_response(
            algorithm,
            &ha1.unwrap_or(&stand_in).to_ascii_lowercase(),
            p.nonce,
            &method.to_string(),
            p.uri,
            qop,
        );
        let matches = constant_time_eq(&expected, &p.response.to_ascii_lowercase());
        if cred.is_none() {
            return Err(AuthError::UnknownUser);
        }
        if !matches {
            return Err(AuthError::WrongPassword);
        }
        self.purge(now);
        let entry = self
            .accepted
            .entry(p.nonce.to_owned())
            .or_insert_with(|| Accepted {
                issued_at,
                last_nc: 0,
                used_without_qop: false,
            });
        let fresh = entry.last_nc == 0 && !entry.used_without_qop;
        match p.nc_value {
            Some(nc) => {
                if entry.used_without_qop || nc <= entry.last_nc {
                    return Err(AuthError::Replay);
                }
                entry.last_nc = nc;
            }
            None => {
                if !fresh {
                    return Err(AuthError::Replay);
                }
                entry.used_without_qop = true;
            }
        }
        if fresh {
            self.order.push_back(p.nonce.to_owned());
            while self.order.len() > self.max_entries {
                if let Some(old) = self.order.pop_front() {
                    self.accepted.remove(&old);
                }
            }
        }
        Ok(p.username.to_owned())
    }

    /// Forgets accepted nonces that are stale by now: they cannot authenticate again.
    fn purge(&mut self, now: EpochMillis) {
        while let Some(front) = self.order.front() {
            let stale = self
                .accepted
                .get(front)
                .is_none_or(|e| now.saturating_sub(e.issued_at) >= self.lifetime_ms);
            if !stale {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.accepted.remove(&old);
            }
        }
    }
}

/// The parameters of a `Digest` credentials header that verification needs.
struct Params<'a> {
    username: &'a str,
    realm: &'a str,
    nonce: &'a str,
    uri: &'a str,
    response: &'a str,
    algorithm: Option<&'a str>,
    /// (nc as sent, cnonce) when qop=auth.
    qop: Option<(&'a str, &'a str)>,
    nc_value: Option<u32>,
}

impl<'a> Params<'a> {
    fn parse(raw: &'a str) -> Result<Self, AuthError> {
        let t = AuthTokenizer::parse(raw).map_err(|_| AuthError::Malformed)?;
        if !t.scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::Malformed);
        }
        let get = |name: &str| {
            t.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let need = |name: &str| get(name).ok_or(AuthError::Malformed);
        let (qop, nc_value) = match get("qop") {
            None => (None, None),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = need("nc")?;
                let cnonce = need("cnonce")?;
                (Some((nc, cnonce)), Some(parse_nc(nc)?))
            }
            // We only ever offer qop="auth"; auth-int or junk is a broken client.
            Some(_) => return Err(AuthError::Malformed),
        };
        Ok(Self {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm: get("algorithm"),
            qop,
            nc_value,
        })
    }
}

/// nc is exactly 8 hex digits (RFC 7616 §3.4): `0000000a` follows `00000009`.
fn parse_nc(nc: &str) -> Result<u32, AuthError> {
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Malformed);
    }
    u32::from_str_radix(nc, 16).map_err(|_| AuthError::Malformed)
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    const BOTH: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Md5];

    const REALM: &str = "sas.example.org";
    const KEY: [u8; 32] = [7; 32];
    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn cred(password: &str) -> SeatCredential {
        SeatCredential {
            username: "arm1".into(),
            ha1_md5: Some(ha1(DigestAlgorithm::Md5, "arm1", REALM, password)),
            ha1_sha256: Some(ha1(DigestAlgorithm::Sha256, "arm1", REALM, password)),
            algorithms: None,
            transports: None,
        }
    }

    fn lookup(user: &str) -> Option<SeatCredential> {
        (user == "arm1").then(|| cred("secret"))
    }

    /// Client side: an Authorization value for `nonce` with the given password and nc.
    fn authorization(
        alg: DigestAlgorithm,
        password: &str,
        nonce: &str,
        nc: Option<&str>,
    ) -> String {
        let uri = "sip:sas.example.org;transport=tcp";
        let h = ha1(alg, "arm1", REALM, password);
        let qop = nc.map(|nc| QopAuth {
            nc,
            cnonce: "c0ffee",
        });
        let resp = compute_response(alg, &h, nonce, "REGISTER", uri, qop);
        let mut v = format!(
            "Digest username=\"arm1\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}",
            alg.token()
        );
        if let Some(nc) = nc {
            v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"c0ffee\""));
        }
        v
    }

    #[test]
    fn rfc7616_test_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let qop = Some(QopAuth {
            nc: "00000001",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        });
        let realm = "http-auth@example.org";
        for (alg, expected) in [
            (DigestAlgorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                DigestAlgorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let h = ha1(alg, "Mufasa", realm, "Circle of Life");
            let got = compute_response(alg, &h, nonce, "GET", "/dir/index.html", qop);
            assert_eq!(got, expected, "{alg:?}");
        }
    }

    #[test]
    fn challenge_lists_algorithms_in_the_order_given() {
        let store = NonceStore::new(KEY, 60_000, 16);
        let c = store.challenge(0, SRC, REALM, false, &BOTH);
        assert_eq!(c.len(), 2);
        assert!(c[0].starts_with("Digest realm=\"sas.example.org\""));
        assert!(c[0].contains("algorithm=SHA-256") && c[0].contains("qop=\"auth\""));
        assert!(c[1].contains("algorithm=MD5") && !c[1].contains("stale"));
        assert!(store.challenge(0, SRC, REALM, true, &BOTH)[1].ends_with("stale=true"));
        let t = AuthTokenizer::parse(&c[0]).unwrap();
        assert_eq!(t.scheme, "Digest");
        let nonce = t.params.iter().find(|(k, _)| *k == "nonce").unwrap().1;
        assert_eq!(nonce.len(), NONCE_LEN);
    }

    #[test]
    fn accepts_both_algorithms_and_rfc2069() {
        let mut store = NonceStore::new(KEY, 60_000, 16);
        for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            let n = store.issue(0, SRC);
            let a = authorization(alg, "secret", &n, Some("00000001"));
            assert_eq!(
                store.verify(1, SRC, REALM, &Method::Register, &a, lookup),
                Ok("arm1".into())
            );
        }
        let n = store.issue(0, SRC);
        let a = authorization(DigestAlgorithm::Md5, "secret", &n, None);
        let a = a.replace(", algorithm=MD5", "");
        assert_eq!(
            store.verify(1, SRC, REALM, &Method::Register, &a, lookup),
            Ok("arm1".into())
        );
        // Without qop there is no counter: a second use is a replay.
        assert_eq!(
            store.verify(2, SRC, REALM, &Method::Register, &a, lookup),
            Err(AuthError::Replay)
        );
    }

    #[test]
    fn wrong_password_unknown_user_and_method() {
        let mut store = NonceStore::new(KEY, 60_000, 16);
        let n = store.issue(0, SRC);
        let a = authorization(DigestAlgorithm::Sha256, "guess", &n, Some("00000001"));
        assert_eq!(
            store.verify(1, SRC, REALM, &Method::Register, &a, lookup),
            Err(AuthError::WrongPassword)
        );
        let good = authorization(DigestAlgorithm::Sha256, "secret", &n, Some("00000001"));
        assert_eq!(
            store.verify(1, SRC, REALM, &Method::Invite, &good, lookup),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            store.verify(1, SRC, REALM, &Method::Register, &good, |_| None),
            Err(AuthError::UnknownUser)
        );
        // Failures did not consume nc=1.
        assert!(
            store
                .verify(1, SRC, REALM, &Method::Register, &good, lookup)
                .is_ok()
        );
    }

    #[test]
    fn replay_and_hex_nonce_count() {
        let mut store = NonceStore::new(KEY, 60_000, 16);
        let n = store.issue(0, SRC);
        let verify = |s: &mut NonceStore, nc: &str| {
            let a = authorization(DigestAlgorithm::Md5, "secret", &n, Some(nc));
            s.verify(1, SRC, REALM, &Method::Register, &a, lookup)
        };
        assert!(verify(&mut store, "00000001").is_ok());
        assert_eq!(verify(&mut store, "00000001"), Err(AuthError::Replay));
        assert!(verify(&mut store, "00000009").is_ok());
        assert!(verify(&mut store, "0000000a").is_ok());
        assert_eq!(verify(&mut store, "00000010").map(|_| ()), Ok(()));
        assert_eq!(verify(&mut store, "0000000f"), Err(AuthError::Replay));
        assert_eq!(verify(&mut store, "1"), Err(AuthError::Malformed));
        assert_eq!(verify(&mut store, "0000000g"), Err(AuthError::Malformed));
    }

    #[test]
    fn stale_forged_and_foreign_nonces() {
        let mut store = NonceStore::new(KEY, 1_000, 16);
        let n = store.issue(0, SRC);
        assert_eq!(n.len(), NONCE_LEN);
        let a = authorization(DigestAlgorithm::Md5, "secret", &n, Some("00000001"));
        assert_eq!(
            store.verify(1_000, SRC, REALM, &Method::Register, &a, lookup),
            Err(AuthError::StaleNonce)
        );
        // Issued to another address, or by another router (secret), or bent: unknown.
        let elsewhere = IpAddr::from([192, 0, 2, 2]);
        assert_eq!(
            store.verify(1, elsewhere, REALM, &Method::Register, &a, lookup),
            Err(AuthError::UnknownNonce)
        );
        let mut other = NonceStore::new([8; 32], 1_000, 16);
        assert_eq!(
            other.verify(1, SRC, REALM, &Method::Register, &a, lookup),
            Err(AuthError::UnknownNonce)
        );
        let later = format!("{:016x}{}", 500, &n[16..]);
        let bent = authorization(DigestAlgorithm::Md5, "secret", &later, Some("00000001"));
        assert_eq!(
            store.verify(600, SRC, REALM, &Method::Register, &bent, lookup),
            Err(AuthError::UnknownNonce)
        );
        let forged = authorization(DigestAlgorithm::Md5, "secret", "deadbeef", Some("00000001"));
        assert_eq!(
            store.verify(1, SRC, REALM, &Method::Register, &forged, lookup),
            Err(AuthError::UnknownNonce)
        );
        assert!(store.is_empty(), "nothing kept for failures");
    }

    #[test]
    fn challenges_hold_no_memory_and_replay_state_is_bounded() {
        let mut store = NonceStore::new(KEY, 60_000, 2);
        for t in 0..10_000 {
            store.challenge(t, SRC, REALM, false, &BOTH);
        }
        assert!(store.is_empty());
        let first = store.issue(0, SRC);
        let a = authorization(DigestAlgorithm::Md5, "secret", &first, Some("00000001"));
        assert!(
            store
                .verify(1, SRC, REALM, &Method::Register, &a, lookup)
                .is_ok()
        );
        for t in 2..5 {
            let n = store.issue(t, SRC);
            let b = authorization(DigestAlgorithm::Md5, "secret", &n, Some("00000001"));
            assert!(
                store
                    .verify(t, SRC, REALM, &Method::Register, &b, lookup)
                    .is_ok()
            );
        }
        assert_eq!(store.len(), 2, "capped");
        // Accepted nonces are forgotten once stale, as new ones come.
        let n = store.issue(70_000, SRC);
        let b = authorization(DigestAlgorithm::Md5, "secret", &n, Some("00000001"));
        assert!(
            store
                .verify(70_000, SRC, REALM, &Method::Register, &b, lookup)
                .is_ok()
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn malformed_realm_and_algorithm() {
        let mut store = NonceStore::new(KEY, 60_000, 16);
        let n = store.issue(0, SRC);
        let m = Method::Register;
        for bad in [
            "",
            "Digest",
            "Basic dXNlcjpwYXNz",
            "Digest username=\"arm1\"",
        ] {
            assert_eq!(
                store.verify(1, SRC, REALM, &m, bad, lookup),
                Err(AuthError::Malformed)
            );
        }
        let a = authorization(DigestAlgorithm::Md5, "secret", &n, Some("00000001"));
        assert_eq!(
            store.verify(1, SRC, "other.realm", &m, &a, lookup),
            Err(AuthError::WrongRealm)
        );
        let sess = a.replace("algorithm=MD5", "algorithm=MD5-sess");
        assert_eq!(
            store.verify(1, SRC, REALM, &m, &sess, lookup),
            Err(AuthError::UnsupportedAlgorithm)
        );
        let md5_only = |_: &str| {
            Some(SeatCredential {
                ha1_sha256: None,
                ..cred("secret")
            })
        };
        let sha = authorization(DigestAlgorithm::Sha256, "secret", &n, Some("00000001"));
        assert_eq!(
            store.verify(1, SRC, REALM, &m, &sha, md5_only),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
}
