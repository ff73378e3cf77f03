//! TLS (rustls, ring provider, TLS 1.2 and 1.3 only) for `sip.wss`, `http.tls_listen` and
//! `sip.tls`: the `[tls]` certificate and key read once at start-up into the acceptors, and
//! the client side of the outbound trunk over TLS (`[trunk] outbound_transport = "tls"`),
//! which presents the same certificate and trusts the operator's pinned ones only.

use crate::config::TlsConfig;
use crate::net::tls_pin::{OptionalClientCert, PinnedServer, Pins};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A client that neither completes nor abandons its handshake is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or key cannot be used (the operator's to fix; retrying won't help).
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// `tls.cert` or `tls.key`.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no PEM item of the expected kind.
    #[error("{path}: no {what} in PEM form: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
        /// The PEM parser's reason.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refuses the pair (key not matching the certificate, unsupported key type).
    #[error("tls.cert and tls.key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The acceptor for the configured certificate and key.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    server(config, false)
}

/// The acceptor of `sip.tls`: with `mutual`, clients are asked for a certificate (not
/// required; see [`crate::net::tls_pin`]).
pub fn sip_acceptor(config: &TlsConfig, mutual: bool) -> Result<TlsAcceptor, TlsError> {
    server(config, mutual)
}

fn server(config: &TlsConfig, mutual: bool) -> Result<TlsAcceptor, TlsError> {
    let (certs, key) = identity(config)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match mutual {
        true => builder.with_client_cert_verifier(Arc::new(OptionalClientCert::new(&provider))),
        false => builder.with_no_client_auth(),
    };
    Ok(TlsAcceptor::from(Arc::new(
        builder.with_single_cert(certs, key)?,
    )))
}

/// The connector of the outbound trunk: trusts the `pins` only, and presents the `[tls]`
/// certificate when there is one (for an operator that asks for mutual TLS).
pub fn trunk_connector(config: Option<&TlsConfig>, pins: Pins) -> Result<TlsConnector, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer::new(pins, &provider)));
    let client = match config {
        Some(config) => {
            let (certs, key) = identity(config)?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(client)))
}

// Explicit provider: the process may link more than one, and picking one must not panic.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key of `[tls]`.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn identity(config: &TlsConfig) -> Result<Identity, TlsError> {
    let certs = read(&config.cert)?;
    let certs = CertificateDer::pem_slice_iter(&certs)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|c| match c.is_empty() {
            true => Err(rustls_pki_types::pem::Error::NoItemsFound),
            false => Ok(c),
        })
        .map_err(|source| TlsError::Pem {
            path: config.cert.clone(),
            what: "certificate",
            source,
        })?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&config.key)?).map_err(|source| TlsError::Pem {
            path: config.key.clone(),
            what: "private key",
            source,
        })?;
    Ok((certs, key))
}

/// The TLS handshake on an accepted connection, bounded in time.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    handshake_within(acceptor, stream, HANDSHAKE_TIMEOUT).await
}

/// [`handshake`] within `limit`.
pub async fn handshake_within(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    limit: Duration,
) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}
