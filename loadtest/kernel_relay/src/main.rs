//! Kernel-path RTP relay, a feasibility prototype for issue 18 (see docs/kernel-relay.md): an
//! eBPF tc program relays each call's packets inside the kernel, copying RTP payloads to a
//! ring buffer a recorder thread drains in batches; this process only answers the signalling
//! (a minimal rtpengine ng server, so `loadtest/mediagen rtpengine` drives it unchanged) and
//! keeps the map of relayed legs.
//!
//! ```sh
//! src/media/kernel/build-bpf.sh     # only after editing src/media/kernel/relay.bpf.c
//! cargo run --release --manifest-path loadtest/kernel_relay/Cargo.toml -- \
//!     --ng 127.0.0.1:9862 --record /tmp/rec     # root: bpf() and tc
//! ```
//!
//! Options: `--ng ADDR`, `--addr IP` (the relay's, in SDP and map keys; 127.0.0.1),
//! `--ports MIN-MAX` (30000-39999), `--interface IF` (lo), `--mode kernel|direct` (direct: no
//! relay, each side talks to the other: the baseline), `--no-redirect` (hand rewritten
//! packets back to the stack instead of sending them out again), `--swap-mac` (peers behind
//! the interface, e.g. a veth: see `veth_check.sh`), `--record DIR`. On SIGTERM
//! or SIGINT it prints `KRELAY k=v …` (kernel counters, recorder counters) and exits.

#[path = "../../bencode.rs"]
mod bencode;
mod bpf;
mod ng;
#[path = "../../sdp_text.rs"]
mod sdp_text;
mod tap;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};

/// Set by SIGTERM / SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

struct Args {
    ng: SocketAddr,
    addr: Ipv4Addr,
    ports: (u16, u16),
    interface: String,
    direct: bool,
    redirect: bool,
    swap_mac: bool,
    record: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        ng: "127.0.0.1:9862".parse()?,
        addr: Ipv4Addr::LOCALHOST,
        ports: (30000, 39999),
        interface: "lo".into(),
        direct: false,
        redirect: true,
        swap_mac: false,
        record: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ng" => args.ng = value()?.parse().context("--ng")?,
            "--addr" => args.addr = value()?.parse().context("--addr")?,
            "--ports" => {
                let v = value()?;
                let (a, b) = v.split_once('-').context("--ports MIN-MAX")?;
                args.ports = (a.parse()?, b.parse()?);
                if args.ports.1 < args.ports.0 + 3 {
                    bail!("--ports: at least two pairs");
                }
            }
            "--interface" => args.interface = value()?,
            "--mode" => {
                args.direct = match value()?.as_str() {
                    "kernel" => false,
                    "direct" => true,
                    other => bail!("--mode kernel|direct, not {other}"),
                }
            }
            "--no-redirect" => args.redirect = false,
            "--swap-mac" => args.swap_mac = true,
            "--record" => args.record = Some(value()?.into()),
            other => bail!("unknown option {other} (see the module doc)"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let (mode, ring) = if args.direct {
        (ng::Mode::Direct, None)
    } else {
        let (relay, ring) = bpf::Relay::attach(&args.interface)?;
        let ifindex = if args.redirect {
            let name = std::ffi::CString::new(args.interface.clone())?;
            // SAFETY: a valid NUL-terminated name.
            let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if i == 0 {
                bail!("no interface {}", args.interface);
            }
            i
        } else {
            0
        };
        let flags = if args.swap_mac { bpf::LEG_SWAP_MAC } else { 0 };
        let mode = ng::Mode::Kernel {
            relay,
            ifindex,
            flags,
        };
        (mode, Some(ring))
    };
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let socket = UdpSocket::bind(args.ng).with_context(|| format!("binding ng {}", args.ng))?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut server = ng::Server::new(mode, args.addr, args.ports);
    eprintln!(
        "kernel_relay: ng on {}, {} mode",
        args.ng,
        if args.direct { "direct" } else { "kernel" }
    );
    let tap = thread::scope(|scope| -> anyhow::Result<Option<tap::TapStats>> {
        let drainer = ring.map(|ring| {
            let dir = args.record.clone();
            thread::Builder::new()
                .name("tap-drain".into())
                .spawn_scoped(scope, move || tap::drain(ring, dir, &STOP))
        });
        let mut buf = vec![0u8; 65535];
        while !STOP.load(Ordering::Relaxed) {
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(reply) = server.handle(&buf[..n]) {
                socket.send_to(&reply, from)?;
            }
        }
        STOP.store(true, Ordering::Relaxed);
        match drainer {
            Some(h) => {
                let stats = h?
                    .join()
                    .map_err(|_| anyhow::anyhow!("the drainer panicked"))??;
                Ok(Some(stats))
            }
            None => Ok(None),
        }
    })?;
    let mut kernel = server.deleted;
    if let Some(relay) = server.relay() {
        kernel.add(&relay.totals());
    }
    let tap = tap.unwrap_or_default();
    println!(
        "KRELAY packets={} bytes={} tap_drops={} tap_records={} tap_bytes={} tap_batches={} tap_malformed={} tap_max_backlog={}",
        kernel.packets,
        kernel.bytes,
        kernel.tap_drops,
        tap.records,
        tap.bytes,
        tap.batches,
        tap.malformed,
        tap.max_backlog
    );
    Ok(())
}
