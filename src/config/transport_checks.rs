//! Checks of the SIP-over-TLS keys: `[sip] tls`, `[trunk] tls_pinned_sha256` and
//! `outbound_transport`, `[[seats]] transports`.

use super::{Config, ConfigError, OutboundTransport, SeatConfig};

impl Config {
    /// Pins are fingerprints; the trunk over TLS has its listener and pins.
    pub(super) fn check_trunk_tls(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        };
        let trunk = &self.trunk;
        if let Some(bad) = (trunk.tls_pinned_sha256.iter())
            .find(|p| crate::net::tls_pin::Fingerprint::parse(p).is_none())
        {
            return Err(ConfigError::Invalid {
                key: "trunk.tls_pinned_sha256".into(),
                reason: format!(
                    "`{bad}` is not a SHA-256 fingerprint (64 hexadecimal digits, `:` allowed; \
                     `openssl x509 -noout -fingerprint -sha256 -in operator.pem`)"
                ),
            });
        }
        if !trunk.tls_pinned_sha256.is_empty() && self.sip.tls.is_none() {
            return Err(invalid(
                "trunk.tls_pinned_sha256",
                "needs sip.tls: a pinned trunk is only recognised over TLS",
            ));
        }
        if trunk.outbound_transport == OutboundTransport::Tls {
            let needs = [
                ("trunk.outbound", trunk.outbound.is_none(), "is needed"),
                (
                    "sip.tls",
                    self.sip.tls.is_none(),
                    "is needed: the operator reaches the router's Contact over TLS",
                ),
                (
                    "trunk.tls_pinned_sha256",
                    trunk.tls_pinned_sha256.is_empty(),
                    "is needed: the operator's certificate is checked against the pins",
                ),
            ];
            if let Some((key, _, why)) = needs.iter().find(|(_, missing, _)| *missing) {
                return Err(ConfigError::Invalid {
                    key: (*key).into(),
                    reason: format!("{why} with trunk.outbound_transport = \"tls\""),
                });
            }
        }
        Ok(())
    }

    /// A seat's transports are listened on (else it could never register).
    pub(super) fn check_seat_transports(
        &self,
        i: usize,
        seat: &SeatConfig,
    ) -> Result<(), ConfigError> {
        use crate::sip::seat_transports::SeatTransport;
        let Some(list) = &seat.transports else {
            return Ok(());
        };
        let key = format!("seats[{i}].transports");
        if list.is_empty() {
            return Err(ConfigError::Invalid {
                key,
                reason: "list at least one transport, or leave it out for any".into(),
            });
        }
        let sip = &self.sip;
        let unheard = list.iter().find(|t| match t {
            SeatTransport::Udp => sip.udp.is_none(),
            SeatTransport::Tcp => sip.tcp.is_none(),
            SeatTransport::Tls => sip.tls.is_none(),
            SeatTransport::Ws => sip.ws.is_none(),
            SeatTransport::Wss => sip.wss.is_none(),
        });
        match unheard {
            Some(t) => Err(ConfigError::Invalid {
                key,
                reason: format!(
                    "seat {} may use {} but sip.{} is not set",
                    seat.username,
                    t.token(),
                    t.token().to_lowercase()
                ),
            }),
            None => Ok(()),
        }
    }
}

impl Config {
    /// Settings that work but protect less than they seem to: SDES keys travel in the SDP,
    /// so SRTP required with a peer that may still signal in clear hides nothing from who
    /// reads its SIP. Shown by `check-config` and logged at start-up.
    pub fn transport_warnings(&self) -> Vec<String> {
        use crate::media::srtp::SrtpPolicy;
        use crate::sip::seat_transports::SeatTransport;
        let clear_seats = (self.seats.iter())
            .filter(|s| s.srtp == SrtpPolicy::Required)
            .filter(|s| match &s.transports {
                Some(allowed) => {
                    (allowed.iter()).any(|t| !matches!(t, SeatTransport::Tls | SeatTransport::Wss))
                }
                None => true,
            })
            .map(|s| {
                format!(
                    "seat {}: srtp = \"required\" but its SIP may be clear (its SDES keys with \
                     it): restrict it with transports = [\"tls\"]",
                    s.username
                )
            });
        let clear_trunk = (self.trunk.srtp == SrtpPolicy::Required
            && self.trunk.tls_pinned_sha256.is_empty())
        .then(|| {
            "trunk: srtp = \"required\" but the trunk may signal in clear (its SDES keys with \
             it): pin its certificate (tls_pinned_sha256) so it is taken over TLS only"
                .to_string()
        });
        clear_seats.chain(clear_trunk).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(text, Path::new("test.toml"))?;
        c.validate()?;
        Ok(c)
    }

    const MINIMAL: &str = "[sip]\n[trunk]\naddresses = [\"127.0.0.1\"]\n";

    #[test]
    fn sip_over_tls_keys_are_checked_and_name_the_key_at_fault() {
        use crate::sip::seat_transports::SeatTransport;
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let sip = MINIMAL.replace("[sip]", "[sip]\ntls = \"127.0.0.1:5061\"");
        let pin = "ab".repeat(32);
        let err = parse(&sip).unwrap_err().to_string();
        assert!(err.contains("`sip.tls`") && err.contains("[tls]"), "{err}");
        let seat = |extra: &str| {
            format!(
                "[[seats]]\nusername = \"arm9\"\nha1_md5 = \"{}\"\n{extra}",
                "0".repeat(32)
            )
        };
        let c = parse(&format!("{sip}{tls}{}", seat("transports = [\"tls\"]\n"))).unwrap();
        let credential = c.seats[0].credential(&c.sip.digest);
        assert_eq!(credential.transports, Some(vec![SeatTransport::Tls]));
        let trunk = |keys: &str| sip.replace("[trunk]", &format!("[trunk]\n{keys}")) + tls;
        for (text, key, why) in [
            (
                format!("{MINIMAL}{tls}{}", seat("transports = [\"tls\"]\n")),
                "seats[0].transports",
                "sip.tls is not set",
            ),
            (
                format!("{sip}{tls}{}", seat("transports = []\n")),
                "seats[0].transports",
                "at least one",
            ),
            (
                trunk("tls_pinned_sha256 = [\"00:11\"]"),
                "trunk.tls_pinned_sha256",
                "`00:11`",
            ),
            (
                MINIMAL.replace(
                    "[trunk]",
                    &format!("[trunk]\ntls_pinned_sha256 = [\"{pin}\"]"),
                ) + tls,
                "trunk.tls_pinned_sha256",
                "needs sip.tls",
            ),
            (
                trunk(&format!(
                    "outbound_transport = \"tls\"\ntls_pinned_sha256 = [\"{pin}\"]"
                )),
                "trunk.outbound",
                "outbound_transport",
            ),
            (
                trunk("outbound = \"192.0.2.1:5061\"\noutbound_transport = \"tls\""),
                "trunk.tls_pinned_sha256",
                "checked against the pins",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{key}`")) && err.contains(why),
                "{text}: {err}"
            );
        }
        let unknown = format!("{sip}{tls}{}", seat("transports = [\"sctp\"]\n"));
        assert!(parse(&unknown).unwrap_err().to_string().contains("sctp"));
        let colons = vec!["AB"; 32].join(":");
        let c = parse(&trunk(&format!(
            "outbound = \"192.0.2.1:5061\"\noutbound_transport = \"tls\"\n\
             tls_pinned_sha256 = [\"{colons}\"]"
        )))
        .unwrap();
        assert_eq!(c.trunk.outbound_transport, OutboundTransport::Tls);
        assert_eq!(c.trunk.pins().0.len(), 1);
    }

    #[test]
    fn required_srtp_over_clear_sip_is_warned_about() {
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let sip = MINIMAL.replace("[sip]", "[sip]\ntls = \"127.0.0.1:5061\"");
        let seat = |name: &str, extra: &str| {
            format!(
                "[[seats]]\nusername = \"{name}\"\nha1_md5 = \"{}\"\nsrtp = \"required\"\n{extra}",
                "0".repeat(32)
            )
        };
        let text = format!(
            "{sip}{tls}{}{}{}",
            seat("remote", "transports = [\"tls\"]\n"),
            seat("desk", ""),
            seat("mixed", "transports = [\"tls\", \"udp\"]\n"),
        );
        let warnings = parse(&text).unwrap().transport_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("seat desk:") && warnings[1].starts_with("seat mixed:"));
        let trunk = text.replace("[trunk]", "[trunk]\nsrtp = \"required\"");
        let warnings = parse(&trunk).unwrap().transport_warnings();
        assert!(warnings[2].starts_with("trunk:"), "{warnings:?}");
        let pinned = trunk.replace(
            "[trunk]",
            &format!("[trunk]\ntls_pinned_sha256 = [\"{}\"]", "ab".repeat(32)),
        );
        assert_eq!(parse(&pinned).unwrap().transport_warnings().len(), 2);
    }
}
