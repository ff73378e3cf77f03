//! TLS server side (rustls, ring provider) for `sip.wss` and `http.tls_listen`: the
//! `[tls]` certificate and key read once at start-up into one acceptor both listeners share.

use crate::config::TlsConfig;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

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
    // Explicit provider: the process may link more than one, and picking one must not panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The TLS handshake on an accepted connection, bounded in time.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
