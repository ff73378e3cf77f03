//! The kernel media path (`[media] kernel_relay`, issue 18, docs/kernel-relay.md): an eBPF tc
//! program (`relay.bpf.c`, checked in compiled as `relay.bpf.o`, rebuilt by `build-bpf.sh`)
//! relays the packets of plain two-party bridges in the kernel, with no syscall per packet.
//!
//! The relay threads keep every socket and stay the path for everything the kernel does not
//! take (which calls qualify: `relay::kernel`). This module loads the program once per
//! process and attaches it to the media interface's tc ingress ([`loader`], behind the
//! `kernel-relay` cargo feature), and owns its `legs` map ([`Legs`], the map's only
//! writer). When the program cannot run (no `CAP_BPF`/`CAP_NET_ADMIN`, the verifier, the
//! attach, a build without the feature), [`start`] says why once and every call relays in
//! userspace: the kernel path is an accelerator, never a dependency.
//!
//! Recorded calls are relayed too: the program copies their packets to a ring buffer that
//! [`tap`] drains into each call's queue, from which the call's relay thread feeds its
//! recorder. Phase 1 limit: the media address must be loopback (on a NIC the redirect must
//! also route: `bpf_fib_lookup`, not done).

use std::net::IpAddr;
use std::sync::OnceLock;

use thiserror::Error;
use tracing::{info, warn};

pub mod records;
pub mod tap;

#[cfg(feature = "kernel-relay")]
mod loader;
#[cfg(feature = "kernel-relay")]
pub use loader::Legs;

/// Why the kernel path is not running.
#[derive(Debug, Error)]
pub enum KernelError {
    #[error("sas-router was built without the `kernel-relay` cargo feature")]
    NotBuilt,
    #[error("the media address {0} is not IPv4 loopback: phase 1 relays on loopback only")]
    NotLoopback(IpAddr),
    #[cfg(feature = "kernel-relay")]
    #[error("loading relay.bpf.o (bpf() refused: CAP_BPF and CAP_NET_ADMIN needed): {0}")]
    Load(#[from] aya::EbpfError),
    #[cfg(feature = "kernel-relay")]
    #[error("the relay program (verifier or attach): {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[cfg(feature = "kernel-relay")]
    #[error("the relay's maps: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("relay.bpf.o has no `{0}`")]
    Missing(&'static str),
    #[error("no interface `{0}`: {1}")]
    Interface(&'static str, nix::errno::Errno),
    #[error("the tap drainer thread: {0}")]
    Drainer(std::io::Error),
}

/// Without the feature there is no program: nothing can hold a `Legs`.
#[cfg(not(feature = "kernel-relay"))]
pub enum Legs {}

#[cfg(not(feature = "kernel-relay"))]
impl Legs {
    pub fn install(
        &self,
        _: std::net::SocketAddrV4,
        _: records::LegVal,
    ) -> Result<(), KernelError> {
        match *self {}
    }

    pub fn read(&self, _: std::net::SocketAddrV4) -> Option<records::LegVal> {
        match *self {}
    }

    pub fn remove(&self, _: std::net::SocketAddrV4) -> Option<records::LegVal> {
        match *self {}
    }

    pub fn ifindex(&self) -> u32 {
        match *self {}
    }

    pub fn egress(&self) -> u32 {
        match *self {}
    }

    pub fn taps(&self) -> &std::sync::Arc<tap::Taps> {
        match *self {}
    }
}

/// Whether this build can run the kernel path at all.
pub const BUILT: bool = cfg!(feature = "kernel-relay");

/// The program, loaded once per process (every router of a test process shares it; each
/// decides with its own `[media] kernel_relay` whether its calls use it).
static LOADED: OnceLock<Result<Legs, String>> = OnceLock::new();

/// Loads and attaches the program for media on `ip` (once per process), or says why not,
/// once, at warn: the calls then relay in userspace.
pub fn start(ip: IpAddr) -> Option<&'static Legs> {
    let loaded = LOADED.get_or_init(|| {
        let loaded = load(ip).map_err(|e| e.to_string());
        match &loaded {
            Ok(legs) => info!(ifindex = legs.ifindex(), "kernel media relay attached"),
            Err(reason) => {
                warn!(%reason, "kernel media relay unavailable: every call relays in userspace")
            }
        }
        loaded
    });
    loaded.as_ref().ok()
}

#[cfg(feature = "kernel-relay")]
fn load(ip: IpAddr) -> Result<Legs, KernelError> {
    loader::attach(ip)
}

#[cfg(not(feature = "kernel-relay"))]
fn load(_: IpAddr) -> Result<Legs, KernelError> {
    Err(KernelError::NotBuilt)
}
