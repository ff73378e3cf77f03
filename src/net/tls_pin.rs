//! Certificate pinning for the operator's trunk (`[trunk] tls_pinned_sha256`): the SHA-256
//! fingerprints of the operator's certificates, checked both ways.
//!
//! - Inbound (mutual TLS on `[sip] tls`): the listener asks every client for a certificate
//!   but does not require one (seats have none). A certificate presented must prove its key
//!   (the handshake signature is verified as usual); whether it is *pinned* is decided after
//!   the handshake, and only a pinned one makes the connection the trunk's.
//! - Outbound (`[trunk] outbound_transport = "tls"`): the operator's server certificate must
//!   be one of the pins; its name and chain are not looked at (the pin is the identity).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The SHA-256 of a certificate's DER encoding (what `openssl x509 -fingerprint -sha256`
/// prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `cert`.
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        Self(Sha256::digest(cert.as_ref()).into())
    }

    /// Parses 64 hexadecimal digits, with or without `:` between the bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(digits.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The pinned fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(pub Vec<Fingerprint>);

impl Pins {
    /// Whether `cert` (the peer's end-entity certificate) is pinned.
    pub fn admits(&self, cert: Option<&CertificateDer<'_>>) -> bool {
        cert.is_some_and(|c| self.0.contains(&Fingerprint::of(c)))
    }

    /// No pin configured: the trunk is known by its address only.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The TLS connections open now whose client presented a pinned certificate, by the
/// client's address: the dispatcher takes requests arriving on them for the trunk's.
#[derive(Clone, Default)]
pub struct PinnedFlows(Arc<Mutex<HashMap<SocketAddr, usize>>>);

/// A noted connection; it leaves the set when dropped (the connection closed).
pub struct PinnedFlow {
    flows: PinnedFlows,
    remote: SocketAddr,
}

impl PinnedFlows {
    /// Notes the connection from `remote` until the returned guard is dropped.
    pub fn note(&self, remote: SocketAddr) -> PinnedFlow {
        *self.lock().entry(remote).or_default() += 1;
        PinnedFlow {
            flows: self.clone(),
            remote,
        }
    }

    /// Whether a connection from `remote` presented a pinned certificate.
    pub fn contains(&self, remote: SocketAddr) -> bool {
        self.lock().contains_key(&remote)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, usize>> {
        // A map of counters: usable whatever a panicking holder left.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for PinnedFlow {
    fn drop(&mut self) {
        let mut flows = self.flows.lock();
        if let Some(n) = flows.get_mut(&self.remote) {
            *n -= 1;
            if *n == 0 {
                flows.remove(&self.remote);
            }
        }
    }
}

/// Asks clients for a certificate without requiring one; any certificate is taken if the
/// client proves it holds its key. Pinning is checked afterwards ([`Pins::admits`]).
#[derive(Debug)]
pub struct OptionalClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl OptionalClientCert {
    /// With the signature algorithms of `provider`.
    pub fn new(provider: &rustls::crypto::CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for OptionalClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts the server's certificate only if it is pinned.
#[derive(Debug)]
pub struct PinnedServer {
    pins: Pins,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServer {
    /// Trusting `pins` only, with the signature algorithms of `provider`.
    pub fn new(pins: Pins, provider: &rustls::crypto::CryptoProvider) -> Self {
        Self {
            pins,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pins.admits(Some(end_entity)) {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(Fingerprint::parse(&hex), Some(Fingerprint([0xab; 32])));
        assert_eq!(Fingerprint::parse(&colons), Some(Fingerprint([0xab; 32])));
        assert_eq!(Fingerprint([0xab; 32]).to_string(), hex);
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_pinned_certificate_is_admitted() {
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let other = CertificateDer::from(vec![4u8]);
        let pins = Pins(vec![Fingerprint::of(&cert)]);
        assert!(pins.admits(Some(&cert)));
        assert!(!pins.admits(Some(&other)));
        assert!(!pins.admits(None));
    }

    #[test]
    fn a_pinned_flow_lasts_as_long_as_its_connection() {
        let flows = PinnedFlows::default();
        let remote: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        let first = flows.note(remote);
        let second = flows.note(remote);
        drop(first);
        assert!(flows.contains(remote));
        drop(second);
        assert!(!flows.contains(remote));
    }
}
