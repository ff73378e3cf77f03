//! OPTIONS to the operator's trunk (`[trunk] outbound`) every `[trunk] options_interval_s`,
//! so that a trunk that is down is known before a forward to the backup centre fails:
//! `sas_trunk_up{target}` is 1 while it answers (any SIP response: something is there to
//! answer), 0 once a probe got none; `sas_trunk_options_total{target,result}` counts
//! `answered` and `unanswered` probes.
//!
//! A probe goes from a UDP socket of its own, connected to the trunk: an ICMP "port
//! unreachable" ends it at once; otherwise it is sent again after 0.5 s and 1.5 s (RFC 3261
//! timer E from T1) and given up after [`ANSWER_WITHIN`].

use crate::metrics::Metrics;
use prometheus::{IntCounter, IntGauge};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// How long a probe waits for an answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(4);
/// When a probe is sent again, from its first sending.
const RESEND_AT: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1500)];

/// The OPTIONS request of probe `seq` from `local` to `target`.
pub fn options(target: SocketAddr, local: SocketAddr, seq: u64, call_id: &str) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-sas-probe-{seq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:sas-router@{local}>;tag=sas-probe\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Whether `datagram` is a SIP response to the probe `call_id`.
pub fn answers(datagram: &[u8], call_id: &str) -> bool {
    let Ok(text) = std::str::from_utf8(datagram) else {
        return false;
    };
    text.starts_with("SIP/2.0 ")
        && text.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                let name = name.trim();
                (name.eq_ignore_ascii_case("call-id") || name == "i") && value.trim() == call_id
            })
        })
}

/// Probes the trunk until shutdown.
pub struct TrunkProbe {
    target: SocketAddr,
    every: Duration,
    up: IntGauge,
    answered: IntCounter,
    unanswered: IntCounter,
}

impl TrunkProbe {
    /// A probe of `target` every `every`, counted in `metrics`.
    pub fn new(target: SocketAddr, every: Duration, metrics: &Metrics) -> Self {
        let label = target.to_string();
        let count = |result| {
            metrics
                .trunk_options
                .with_label_values(&[label.as_str(), result])
        };
        Self {
            target,
            every,
            up: metrics.trunk_up.with_label_values(&[&label]),
            answered: count("answered"),
            unanswered: count("unanswered"),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let any: SocketAddr = match self.target {
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = match UdpSocket::bind(any).await {
            Ok(s) => s,
            Err(e) => return tracing::error!(error = %e, "trunk OPTIONS probe: no socket"),
        };
        if let Err(e) = socket.connect(self.target).await {
            return tracing::error!(target = %self.target, error = %e, "trunk OPTIONS probe: no route");
        }
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_up = None;
        for seq in 1.. {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let up = tokio::select! {
                _ = shutdown.cancelled() => return,
                up = self.probe(&socket, seq) => up,
            };
            self.up.set(i64::from(up));
            if up {
                self.answered.inc();
            } else {
                self.unanswered.inc();
            }
            match (was_up.replace(up), up) {
                (Some(true) | None, false) => {
                    tracing::error!(target = %self.target, "the trunk does not answer OPTIONS")
                }
                (Some(false), true) => {
                    tracing::info!(target = %self.target, "the trunk answers OPTIONS again")
                }
                _ => {}
            }
        }
    }

    /// One probe: true if the trunk answered it in time.
    async fn probe(&self, socket: &UdpSocket, seq: u64) -> bool {
        let Ok(local) = socket.local_addr() else {
            return false;
        };
        let call_id = format!("sas-probe-{seq}-{}@{}", std::process::id(), local.ip());
        let request = options(self.target, local, seq, &call_id);
        let start = tokio::time::Instant::now();
        let mut resends = RESEND_AT.iter().map(|d| start + *d);
        let mut next_send = Some(start);
        let mut buf = [0u8; 2048];
        loop {
            if next_send.is_some_and(|at| at <= tokio::time::Instant::now()) {
                if socket.send(request.as_bytes()).await.is_err() {
                    return false;
                }
                next_send = resends.next();
            }
            let wake = next_send
                .unwrap_or(start + ANSWER_WITHIN)
                .min(start + ANSWER_WITHIN);
            match tokio::time::timeout_at(wake, socket.recv(&mut buf)).await {
                Ok(Ok(n)) if answers(&buf[..n], &call_id) => return true,
                // Something else (a late answer to an older probe): keep waiting.
                Ok(Ok(_)) => {}
                // Port unreachable: nothing listens there.
                Ok(Err(_)) => return false,
                Err(_) if tokio::time::Instant::now() >= start + ANSWER_WITHIN => return false,
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_sip_and_only_its_own_answer_counts() {
        let target: SocketAddr = "192.0.2.10:5060".parse().unwrap();
        let local: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let request = options(target, local, 7, "sas-probe-7@x");
        assert!(request.starts_with("OPTIONS sip:192.0.2.10:5060 SIP/2.0\r\n"));
        assert!(request.contains("CSeq: 7 OPTIONS\r\n"));
        assert!(request.ends_with("Content-Length: 0\r\n\r\n"));

        let answer =
            "SIP/2.0 200 OK\r\nVia: x\r\ncall-id:  sas-probe-7@x\r\nCSeq: 7 OPTIONS\r\n\r\n";
        assert!(answers(answer.as_bytes(), "sas-probe-7@x"));
        // Any status: the trunk is there to refuse it.
        let refused = answer
            .replace("200 OK", "403 Forbidden")
            .replace("call-id:", "i:");
        assert!(answers(refused.as_bytes(), "sas-probe-7@x"));
        assert!(
            !answers(answer.as_bytes(), "sas-probe-8@x"),
            "an older probe's"
        );
        assert!(!answers(request.as_bytes(), "sas-probe-7@x"), "a request");
        assert!(!answers(&[0xff, 0xfe], "sas-probe-7@x"));
    }
}
