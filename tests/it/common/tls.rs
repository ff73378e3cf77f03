//! TLS for the tests: self-signed certificates made on the spot (rcgen), a client that
//! trusts the router's and nothing else (optionally presenting a certificate of its own),
//! and TLS tunnels for SIPp.
//!
//! Debian's SIPp (`sip-tester` 3.6.1) is built without OpenSSL: `-t l1` stops with "To use
//! a TLS transport you must compile SIPp with OpenSSL". SIPp peers of the router's TLS
//! listener therefore speak TCP (`-t t1`) to a [`Tunnel`] that holds the TLS connection,
//! as stunnel would: the router sees a real TLS client (with the certificate given), and
//! SIPp a stream on which requests come back.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A fresh self-signed certificate: (cert.pem path, key.pem path, the certificate).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().clone())
}

/// A certificate and its key, to present.
#[derive(Debug)]
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed one (files under `dir`).
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let (_, key, cert) = self_signed(dir);
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        Self { cert, key }
    }

    /// Its SHA-256 fingerprint, as `[trunk] tls_pinned_sha256` takes it.
    pub fn fingerprint(&self) -> String {
        sas_router::net::tls_pin::Fingerprint::of(&self.cert).to_string()
    }

    /// The same certificate and key.
    pub fn copy(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }

    fn chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.cert.clone()], self.key.clone_key())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `server` only (name `localhost`), presenting `me` if given.
fn connector(server: &CertificateDer<'static>, me: Option<&Identity>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match me {
        Some(me) => {
            let (chain, key) = me.chain();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` that trusts `cert` only (server name `localhost`).
pub async fn connect(addr: SocketAddr, cert: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    connect_as(addr, cert, None).await
}

/// [`connect`], presenting `me`.
pub async fn connect_as(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    me: Option<&Identity>,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector(cert, me)
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the router")
}

/// A TCP port on loopback whose one connection is carried over TLS: to the router's TLS
/// listener (a SIPp client behind it), or from the router (a SIPp server behind it).
pub struct Tunnel {
    /// Where the plain side connects (SIPp as a client) or listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Tunnel {
    /// Plain TCP on [`Tunnel::addr`] → TLS to `router` (trusting `server`), presenting `me`.
    pub async fn to_router(
        router: SocketAddr,
        server: &CertificateDer<'static>,
        me: Option<Identity>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = connector(server, me.as_ref());
        let task = tokio::spawn(async move {
            let Ok((mut plain, _)) = listener.accept().await else {
                return;
            };
            let tcp = TcpStream::connect(router).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let Ok(mut tls) = connector.connect(name, tcp).await else {
                return;
            };
            tokio::io::copy_bidirectional(&mut plain, &mut tls)
                .await
                .ok();
        });
        Self { addr, task }
    }

    /// TLS on [`Tunnel::addr`] with `me`'s certificate → plain TCP to `plain` (a SIPp
    /// server), for each connection.
    pub async fn from_router(plain: SocketAddr, me: &Identity) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (chain, key) = me.chain();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut inner) = TcpStream::connect(plain).await else {
                        return;
                    };
                    tokio::io::copy_bidirectional(&mut tls, &mut inner)
                        .await
                        .ok();
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}
