//! baresip 1.0 (Debian's `baresip`, on libre 1.1) as a seat's desk phone: a temporary
//! configuration directory, one account (over UDP, or TLS) that answers calls by itself and
//! sends a WAV file (`aufile`) as its microphone, and a clean exit (SIGINT: it unregisters
//! and quits); optionally with SDES-SRTP (its `srtp` module, account `mediaenc`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const BARESIP: &str = "/usr/bin/baresip";

/// A running baresip; killed if dropped without [`Baresip::stop`].
pub struct Baresip {
    child: Child,
}

impl Baresip {
    /// Starts baresip in `dir` (its configuration goes there) as `user`/`password` on the
    /// router's UDP `router`, auto-answering and playing `microphone` (a WAV file).
    pub fn start(
        dir: &Path,
        router: SocketAddr,
        credentials: (&str, &str),
        microphone: &Path,
    ) -> Self {
        Self::launch(dir, router, credentials, microphone, None, None)
    }

    /// [`Baresip::start`] over TLS to the router's `[sip] tls` address `router`, trusting
    /// the certificate `ca` (PEM).
    pub fn start_tls(
        dir: &Path,
        router: SocketAddr,
        credentials: (&str, &str),
        microphone: &Path,
        ca: &Path,
    ) -> Self {
        Self::launch(dir, router, credentials, microphone, Some(ca), None)
    }

    /// [`start`](Self::start) with media encryption `mediaenc` (`srtp`: best effort in
    /// `RTP/AVP`, `srtp-mand`: `RTP/SAVP` only, `srtp-mandf`: `RTP/SAVPF` only), baresip's `srtp` module.
    pub fn start_with_mediaenc(
        dir: &Path,
        router: SocketAddr,
        credentials: (&str, &str),
        microphone: &Path,
        mediaenc: &str,
    ) -> Self {
        Self::launch(dir, router, credentials, microphone, None, Some(mediaenc))
    }

    fn launch(
        dir: &Path,
        router: SocketAddr,
        (user, password): (&str, &str),
        microphone: &Path,
        tls_ca: Option<&Path>,
        mediaenc: Option<&str>,
    ) -> Self {
        assert!(
            Path::new(BARESIP).exists(),
            "baresip is missing: install the Debian package `baresip-core` (tests/run.sh does it)"
        );
        std::fs::create_dir_all(dir).unwrap();
        // baresip takes `sip` (UDP, TCP) and `sip + 1` (TLS).
        let sip = super::ports::signal_ports(2);
        let rtp = super::ports::media_port();
        // net_interface is an address, not "lo": baresip 1.0 takes the name for a lookup
        // that loopback fails. The player is ALSA's null device: nothing to hear in CI.
        let (transport, cafile) = match tls_ca {
            Some(ca) => ("tls", format!("sip_cafile {}\n", ca.display())),
            None => ("udp", String::new()),
        };
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             {cafile}\
             net_interface 127.0.0.1\n\
             audio_player alsa,null\n\
             audio_alert alsa,null\n\
             audio_source aufile,{mic}\n\
             rtp_ports {rtp}-{rtp_end}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module alsa.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             {srtp}",
            mic = microphone.display(),
            rtp_end = rtp + super::ports::PEER_PORTS - 1,
            srtp = if mediaenc.is_some() {
                "module srtp.so\n"
            } else {
                ""
            },
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let mediaenc = mediaenc
            .map(|m| format!(";mediaenc={m}"))
            .unwrap_or_default();
        let account = format!(
            "<sip:{user}@{router};transport={transport}>;auth_pass={password};answermode=auto;regint=300{mediaenc}\n"
        );
        std::fs::write(dir.join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new(BARESIP)
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        Self { child }
    }

    /// Asks baresip to quit (SIGINT, as Ctrl-C) and checks it exits 0 within 15 s.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("baresip still running").to_string();
        let signalled = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(signalled.success(), "could not signal baresip {pid}");
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("baresip did not quit within 15 s of SIGINT")
            .unwrap();
        assert!(status.success(), "baresip exited with {status}");
    }
}
