//! Tests of the registrar with real REGISTER texts and a client-side digest.

use super::*;
use crate::sip::digest::{DigestAlgorithm, QopAuth, compute_response, ha1};
use crate::sip::seat_transports::SeatTransport;
use DigestAlgorithm::{Md5, Sha256};
use rsipstack::sip::headers::typed::tokenizers::AuthTokenizer;

const REALM: &str = "sas.example.org";
const T0: EpochMillis = 1_700_000_000_000;

/// arm1, arm2: both HA1s, challenged as the transport says; sha1: its own list,
/// SHA-256 only; tls1: over TLS only.
fn lookup(user: &str) -> Option<SeatCredential> {
    ["arm1", "arm2", "sha1", "tls1"]
        .contains(&user)
        .then(|| SeatCredential {
            username: user.into(),
            ha1_md5: Some(ha1(DigestAlgorithm::Md5, user, REALM, "secret")),
            ha1_sha256: Some(ha1(DigestAlgorithm::Sha256, user, REALM, "secret")),
            algorithms: (user == "sha1").then(|| TransportAlgorithms::uniform(&[Sha256])),
            transports: (user == "tls1").then(|| vec![SeatTransport::Tls]),
        })
}

fn source() -> SocketAddr {
    "203.0.113.7:40123".parse().unwrap()
}

/// A UA: builds REGISTERs and answers challenges.
struct Ua {
    user: &'static str,
    password: &'static str,
    alg: DigestAlgorithm,
    nonce: Option<String>,
    nc: u32,
    cseq: u32,
}

impl Ua {
    fn new(user: &'static str, password: &'static str, alg: DigestAlgorithm) -> Self {
        Self {
            user,
            password,
            alg,
            nonce: None,
            nc: 0,
            cseq: 0,
        }
    }

    /// The REGISTER text; `extra` are raw header lines (Contact, Expires...).
    fn register(&mut self, extra: &[&str]) -> Request {
        self.cseq += 1;
        let mut text = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-{c};rport\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-outer{c}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{u}@{REALM}>;tag=ua{u}\r\n\
             To: <sip:{u}@{REALM}>\r\n\
             Call-ID: reg-{u}@192.168.1.20\r\n\
             CSeq: {c} REGISTER\r\n",
            u = self.user,
            c = self.cseq
        );
        if let Some(nonce) = &self.nonce {
            self.nc += 1;
            text.push_str(&format!("Authorization: {}\r\n", self.authorization(nonce)));
        }
        for line in extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(text.as_str()).unwrap()
    }

    fn authorization(&self, nonce: &str) -> String {
        let uri = format!("sip:{REALM}");
        let nc = format!("{:08x}", self.nc);
        let h = ha1(self.alg, self.user, REALM, self.password);
        let qop = Some(QopAuth {
            nc: &nc,
            cnonce: "0a4f113b",
        });
        let resp = compute_response(self.alg, &h, nonce, "REGISTER", &uri, qop);
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"0a4f113b\"",
            self.user,
            self.alg.token()
        )
    }

    /// Takes the nonce offered for our algorithm in a 401.
    fn accept_challenge(&mut self, resp: &Response) {
        let value = www_authenticate(resp)
            .into_iter()
            .find(|v| v.contains(&format!("algorithm={},", self.alg.token())))
            .expect("challenge for our algorithm");
        let t = AuthTokenizer::parse(&value).unwrap();
        let nonce = t.params.iter().find(|(k, _)| *k == "nonce").unwrap().1;
        self.nonce = Some(nonce.to_owned());
        self.nc = 0;
    }
}

struct Fixture {
    reg: Registrar,
    nonces: NonceStore,
}

impl Fixture {
    fn new() -> Self {
        Self::with_digest(TransportAlgorithms::default())
    }

    fn with_digest(digest: TransportAlgorithms) -> Self {
        Self {
            reg: Registrar::new(RegistrarConfig {
                realm: REALM.into(),
                digest,
                ..RegistrarConfig::default()
            }),
            nonces: NonceStore::new([1; 32], 300_000, 1024),
        }
    }

    fn send(&mut self, now: EpochMillis, req: &Request) -> RegisterOutcome {
        self.reg
            .handle_register(now, req, source(), Transport::Udp, &mut self.nonces, lookup)
    }

    /// Challenge then authenticated REGISTER; returns the final outcome.
    fn login(&mut self, now: EpochMillis, ua: &mut Ua, extra: &[&str]) -> RegisterOutcome {
        let first = self.send(now, &ua.register(extra));
        assert_eq!(first.response.status_code, StatusCode::Unauthorized);
        ua.accept_challenge(&first.response);
        self.send(now, &ua.register(extra))
    }
}

fn www_authenticate(resp: &Response) -> Vec<String> {
    resp.headers
        .iter()
        .filter_map(|h| match h {
            Header::WwwAuthenticate(w) => Some(w.value().to_owned()),
            _ => None,
        })
        .collect()
}

fn contacts(resp: &Response) -> Vec<String> {
    resp.contact_headers()
        .iter()
        .map(|c| c.value().to_owned())
        .collect()
}

fn registered(user: &str, registered: bool) -> Option<BindingChange> {
    Some(BindingChange {
        username: user.into(),
        registered,
    })
}

const CONTACT: &str = "Contact: <sip:arm1@192.168.1.20:5060>";

#[test]
fn first_register_is_challenged_with_a_complete_response() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    let req = ua.register(&[CONTACT]);
    let out = f.send(T0, &req);
    assert_eq!(out.response.status_code, StatusCode::Unauthorized);
    assert_eq!(out.change, None);
    let challenges = www_authenticate(&out.response);
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(challenges[0].contains("algorithm=MD5"));

    // Round-trip the wire form: Vias in order, To tagged, dialog headers copied.
    let text = String::from_utf8(out.response.to_bytes()).unwrap();
    let parsed = Response::try_from(text.as_str()).unwrap();
    let vias: Vec<_> = parsed
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Via(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(vias.len(), 2);
    assert!(vias[0].contains("192.168.1.20") && vias[1].contains("10.0.0.1"));
    assert!(parsed.to_header().unwrap().typed().unwrap().tag().is_some());
    assert_eq!(
        parsed.from_header().unwrap().value(),
        req.from_header().unwrap().value()
    );
    assert_eq!(
        parsed.call_id_header().unwrap().value(),
        "reg-arm1@192.168.1.20"
    );
    assert_eq!(parsed.cseq_header().unwrap().value(), "1 REGISTER");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn authenticated_register_binds_md5_and_sha256() {
    for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let mut f = Fixture::with_digest(TransportAlgorithms::uniform(&[Sha256, Md5]));
        let mut ua = Ua::new("arm1", "secret", alg);
        let out = f.login(T0, &mut ua, &[CONTACT, "Expires: 600"]);
        assert_eq!(out.response.status_code, StatusCode::OK, "{alg:?}");
        assert_eq!(out.change, registered("arm1", true));
        assert_eq!(
            contacts(&out.response),
            ["<sip:arm1@192.168.1.20:5060>;expires=600"]
        );
        let b = &f.reg.bindings("arm1")[0];
        assert_eq!(b.source, source());
        assert_eq!(b.transport, Transport::Udp);
        assert_eq!(b.expires_at, T0 + 600_000);
        assert_eq!((b.call_id.as_str(), b.cseq), ("reg-arm1@192.168.1.20", 2));
    }
}

#[test]
fn bad_credentials_are_forbidden() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "wrong", DigestAlgorithm::Md5);
    let out = f.login(T0, &mut ua, &[CONTACT]);
    assert_eq!(out.response.status_code, StatusCode::Forbidden);
    assert!(f.reg.bindings("arm1").is_empty());

    let mut ghost = Ua::new("ghost", "secret", DigestAlgorithm::Md5);
    let out = f.login(T0, &mut ghost, &[CONTACT]);
    assert_eq!(out.response.status_code, StatusCode::Forbidden);

    // arm2 authenticates correctly but tries to register arm1's AOR.
    let mut ua = Ua::new("arm2", "secret", DigestAlgorithm::Md5);
    let first = f.send(T0, &ua.register(&[CONTACT]));
    ua.accept_challenge(&first.response);
    let mut req = ua.register(&[CONTACT]);
    req.headers.retain(|h| !matches!(h, Header::To(_)));
    req.headers
        .push(Header::To(format!("<sip:arm1@{REALM}>").into()));
    let out = f.send(T0, &req);
    assert_eq!(out.response.status_code, StatusCode::Forbidden);
    assert!(f.reg.bindings("arm1").is_empty());
}

#[test]
fn a_seat_restricted_to_tls_is_refused_over_udp_before_any_challenge() {
    let mut f = Fixture::new();
    let req = Ua::new("tls1", "secret", Md5).register(&[CONTACT]);
    let refused = |status: &StatusCode| {
        assert_eq!(status.code(), 403);
        assert_eq!(status.to_string(), "403 Forbidden (TLS required)");
    };
    let register = f
        .reg
        .handle_register(T0, &req, source(), Transport::Udp, &mut f.nonces, lookup);
    refused(&register.response.status_code);
    assert!(www_authenticate(&register.response).is_empty());
    let early = (f.reg)
        .challenge_unauthenticated(T0, &req, (source().ip(), Transport::Udp), &f.nonces, lookup)
        .unwrap();
    refused(&early.status_code);
    let mut invite = req.clone();
    invite.method = Method::Invite;
    let udp = (source().ip(), Transport::Udp);
    let answer = (f.reg)
        .authenticate_request(T0, &invite, udp, &mut f.nonces, lookup)
        .unwrap_err();
    refused(&answer.status_code);
    // Over TLS it is challenged, then registered, as any seat.
    let mut ua = Ua::new("tls1", "secret", Md5);
    let first = (f.reg).handle_register(
        T0,
        &ua.register(&[CONTACT]),
        source(),
        Transport::Tls,
        &mut f.nonces,
        lookup,
    );
    assert_eq!(first.response.status_code, StatusCode::Unauthorized);
    ua.accept_challenge(&first.response);
    let out = (f.reg).handle_register(
        T0,
        &ua.register(&[CONTACT]),
        source(),
        Transport::Tls,
        &mut f.nonces,
        lookup,
    );
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(f.reg.bindings("tls1")[0].transport, Transport::Tls);
}

/// The WWW-Authenticate values with the (random) nonce blanked out.
fn challenge_shape(resp: &Response) -> Vec<String> {
    www_authenticate(resp)
        .iter()
        .map(|v| {
            let t = AuthTokenizer::parse(v).unwrap();
            let nonce = t.params.iter().find(|(k, _)| *k == "nonce").unwrap().1;
            v.replace(nonce, "N")
        })
        .collect()
}

/// A REGISTER's 401 and a seat INVITE's 401 for `user` over `transport`.
fn challenges_of(f: &mut Fixture, user: &'static str, transport: Transport) -> [Vec<String>; 2] {
    let req = Ua::new(user, "secret", Md5).register(&[CONTACT]);
    let register = f
        .reg
        .handle_register(T0, &req, source(), transport, &mut f.nonces, lookup);
    let mut invite = req.clone();
    invite.method = Method::Invite;
    let invite = f
        .reg
        .authenticate_request(
            T0,
            &invite,
            (source().ip(), transport),
            &mut f.nonces,
            lookup,
        )
        .unwrap_err();
    [
        challenge_shape(&register.response),
        challenge_shape(&invite),
    ]
}

#[test]
fn an_unknown_name_is_challenged_exactly_like_a_seat() {
    let mut f = Fixture::with_digest(TransportAlgorithms {
        wss: vec![Sha256, Md5],
        ..TransportAlgorithms::default()
    });
    for transport in [Transport::Udp, Transport::Tcp, Transport::Wss] {
        let seat = challenges_of(&mut f, "arm1", transport);
        let ghost = challenges_of(&mut f, "ghost", transport);
        assert_eq!(seat, ghost, "{transport}");
        assert_eq!(
            seat[0], seat[1],
            "REGISTER and INVITE differ over {transport}"
        );
    }
    let shape = |t| {
        challenges_of(
            &mut Fixture::with_digest(TransportAlgorithms::default()),
            "x",
            t,
        )
    };
    assert_eq!(
        shape(Transport::Udp)[0],
        [format!(
            "Digest realm=\"{REALM}\", nonce=\"N\", algorithm=MD5, qop=\"auth\""
        )]
    );
}

#[test]
fn lists_per_transport_and_per_seat_in_their_order() {
    let mut f = Fixture::with_digest(TransportAlgorithms {
        wss: vec![Sha256, Md5],
        ..TransportAlgorithms::default()
    });
    let algorithms = |f: &mut Fixture, user, transport| {
        challenges_of(f, user, transport)[0]
            .iter()
            .map(|v| {
                v.split("algorithm=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(algorithms(&mut f, "arm1", Transport::Udp), ["MD5"]);
    assert_eq!(
        algorithms(&mut f, "arm1", Transport::Wss),
        ["SHA-256", "MD5"]
    );
    assert_eq!(algorithms(&mut f, "sha1", Transport::Udp), ["SHA-256"]);
    assert_eq!(algorithms(&mut f, "sha1", Transport::Wss), ["SHA-256"]);
}

#[test]
fn an_answer_with_an_algorithm_not_offered_is_refused() {
    // arm1 is offered MD5 only: a SHA-256 answer (valid as it is) is refused, and sha1,
    // offered SHA-256 only, cannot be downgraded to MD5.
    for (user, offered, answered) in [("arm1", Md5, Sha256), ("sha1", Sha256, Md5)] {
        let mut f = Fixture::new();
        let mut ua = Ua::new(user, "secret", offered);
        let first = f.send(T0, &ua.register(&[CONTACT]));
        ua.accept_challenge(&first.response);
        ua.alg = answered;
        let out = f.send(T0, &ua.register(&[CONTACT]));
        assert_eq!(out.response.status_code, StatusCode::Forbidden, "{user}");
        ua.alg = offered;
        let out = f.send(T0, &ua.register(&[CONTACT]));
        assert_eq!(out.response.status_code, StatusCode::OK, "{user}");
    }
}

#[test]
fn replayed_authorization_is_rechallenged() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    let first = f.send(T0, &ua.register(&[CONTACT]));
    ua.accept_challenge(&first.response);
    let req = ua.register(&[CONTACT]);
    assert_eq!(f.send(T0, &req).response.status_code, StatusCode::OK);
    let replay = f.send(T0 + 1, &req);
    assert_eq!(replay.response.status_code, StatusCode::Unauthorized);
    assert_eq!(www_authenticate(&replay.response).len(), 1);
    assert_eq!(replay.change, None);
}

#[test]
fn stale_nonce_is_rechallenged_with_stale_true() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("sha1", "secret", DigestAlgorithm::Sha256);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(T0 + 300_000, &ua.register(&[CONTACT]));
    assert_eq!(out.response.status_code, StatusCode::Unauthorized);
    assert!(
        www_authenticate(&out.response)
            .iter()
            .all(|v| v.contains("stale=true"))
    );
}

#[test]
fn refresh_keeps_one_binding_and_updates_it() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(T0 + 100_000, &ua.register(&[CONTACT, "Expires: 120"]));
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(out.change, registered("arm1", true));
    assert_eq!(
        contacts(&out.response),
        ["<sip:arm1@192.168.1.20:5060>;expires=120"]
    );
    let b = f.reg.bindings("arm1");
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].cseq, b[0].registered_at), (3, T0 + 100_000));
}

#[test]
fn two_contacts_are_both_listed_most_recent_first() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(
        T0 + 1_000,
        &ua.register(&["Contact: <sip:arm1@192.168.1.21:5070;transport=tcp>;expires=300"]),
    );
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(
        contacts(&out.response),
        [
            "<sip:arm1@192.168.1.21:5070;transport=TCP>;expires=300",
            "<sip:arm1@192.168.1.20:5060>;expires=599",
        ]
    );
    // Several contacts in one request, comma-separated.
    let out = f.send(
        T0 + 2_000,
        &ua.register(&["Contact: <sip:arm1@10.1.1.1>, <sip:arm1@10.1.1.2>;expires=90"]),
    );
    assert_eq!(contacts(&out.response).len(), 4);
    assert_eq!(f.reg.bindings("arm1")[0].expires_at, T0 + 92_000);
}

#[test]
fn query_lists_bindings_without_change() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(T0 + 10_000, &ua.register(&[]));
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(out.change, None);
    assert_eq!(
        contacts(&out.response),
        ["<sip:arm1@192.168.1.20:5060>;expires=590"]
    );
}

#[test]
fn unregister_and_wildcard_removal() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(T0, &ua.register(&["Contact: <sip:arm1@10.1.1.1>"]));
    assert_eq!(contacts(&out.response).len(), 2);

    let out = f.send(T0, &ua.register(&[CONTACT, "Expires: 0"]));
    assert_eq!(out.change, registered("arm1", true));
    assert_eq!(f.reg.bindings("arm1").len(), 1);
    let out = f.send(
        T0,
        &ua.register(&["Contact: <sip:arm1@10.1.1.1>;expires=0"]),
    );
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(out.change, registered("arm1", false));
    assert!(contacts(&out.response).is_empty());
    assert_eq!(f.reg.users().count(), 0);

    f.send(T0, &ua.register(&[CONTACT]));
    let bad = f.send(T0, &ua.register(&["Contact: *", "Expires: 60"]));
    assert_eq!(bad.response.status_code, StatusCode::BadRequest);
    let out = f.send(T0, &ua.register(&["Contact: *", "Expires: 0"]));
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(out.change, registered("arm1", false));
    assert!(f.reg.bindings("arm1").is_empty());
}

#[test]
fn expiry_bounds_min_and_max() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    let out = f.login(T0, &mut ua, &[CONTACT, "Expires: 30"]);
    assert_eq!(out.response.status_code, StatusCode::IntervalTooBrief);
    assert_eq!(out.response.min_expires_header().unwrap().value(), "60");
    assert!(f.reg.bindings("arm1").is_empty());

    let out = f.send(
        T0,
        &ua.register(&["Contact: <sip:arm1@10.1.1.1>;expires=86400"]),
    );
    assert_eq!(
        contacts(&out.response),
        ["<sip:arm1@10.1.1.1>;expires=3600"]
    );
}

#[test]
fn out_of_order_cseq_is_refused() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    ua.cseq -= 1; // the next REGISTER reuses CSeq 2
    let out = f.send(T0, &ua.register(&[CONTACT, "Expires: 0"]));
    assert_eq!(out.response.status_code.code(), 400);
    assert!(
        out.response.to_string().contains("CSeq not above"),
        "{}",
        out.response
    );
    assert_eq!(f.reg.bindings("arm1").len(), 1);
}

#[test]
fn time_left_for_the_router_and_an_expired_binding_removed_unless_refreshed() {
    let mut f = Fixture::new();
    let mut a = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut a, &[CONTACT, "Expires: 60"]);
    f.send(
        T0,
        &a.register(&["Contact: <sip:arm1@10.1.1.1>;expires=120"]),
    );
    let mut left = f.reg.time_left("arm1", T0 + 10_000);
    left.sort();
    assert_eq!(
        left,
        vec![
            ("sip:arm1@10.1.1.1".to_string(), 110_000),
            ("sip:arm1@192.168.1.20:5060".to_string(), 50_000)
        ]
    );
    // The Router's timer for the first contact crossed a refresh: kept.
    assert!(
        !f.reg
            .remove_binding("arm1", "sip:arm1@10.1.1.1", T0 + 60_000)
    );
    assert!(
        f.reg
            .remove_binding("arm1", "sip:arm1@192.168.1.20:5060", T0 + 60_000)
    );
    assert_eq!(f.reg.bindings("arm1").len(), 1);
    assert!(
        f.reg
            .remove_binding("arm1", "sip:arm1@10.1.1.1", T0 + 120_000)
    );
    assert_eq!(f.reg.users().count(), 0);
}

#[test]
fn malformed_requests_get_400() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", DigestAlgorithm::Md5);
    f.login(T0, &mut ua, &[CONTACT]);
    let out = f.send(T0, &ua.register(&[CONTACT, "Expires: soon"]));
    assert_eq!(out.response.status_code, StatusCode::BadRequest);
    let mut req = ua.register(&[CONTACT]);
    req.headers
        .retain(|h| !matches!(h, Header::Authorization(_)));
    req.headers
        .push(Header::Authorization("Digest username=\"arm1\"".into()));
    let out = f.send(T0, &req);
    assert_eq!(out.response.status_code, StatusCode::BadRequest);
    let mut options = ua.register(&[]);
    options.method = Method::Options;
    let out = f.send(T0, &options);
    assert_eq!(out.response.status_code, StatusCode::MethodNotAllowed);
    assert!(
        out.response
            .headers
            .iter()
            .any(|h| matches!(h, Header::Allow(_)))
    );
    assert!(f.reg.remove_user("arm1"));
    assert!(!f.reg.remove_user("arm1"));
}

/// Bindings kept across a restart come back unless expired, most recent first.
#[test]
fn restored_bindings_drop_the_expired_and_keep_the_most_recent_first() {
    let mut reg = Registrar::new(RegistrarConfig::default());
    let binding = |contact: &str, registered_at, expires_at| Binding {
        contact: Uri::try_from(contact).unwrap(),
        source: source(),
        transport: Transport::Udp,
        expires_at,
        call_id: "c".into(),
        cseq: 1,
        registered_at,
        path: Vec::new(),
    };
    let old = binding("sip:arm1@192.0.2.1:5060", T0 - 100, T0 + 60_000);
    let new = binding("sip:arm1@192.0.2.2:5060", T0 - 10, T0 + 60_000);
    let expired = binding("sip:arm1@192.0.2.3:5060", T0 - 5, T0);
    let change = reg.restore(T0, "arm1", vec![old.clone(), expired, new.clone()]);
    assert_eq!(
        change,
        Some(BindingChange {
            username: "arm1".into(),
            registered: true
        })
    );
    assert_eq!(reg.bindings("arm1"), [new, old]);
    let gone = binding("sip:arm2@192.0.2.4:5060", T0 - 5, T0 - 1);
    assert_eq!(reg.restore(T0, "arm2", vec![gone]), None);
    assert!(reg.bindings("arm2").is_empty());
}

/// The header lines of a response, nonce and To tag masked.
fn masked(resp: &Response) -> String {
    let text = resp.to_string();
    let text = match text.split_once("nonce=\"") {
        Some((head, rest)) => format!("{head}nonce=\"N{}", &rest[rest.find('"').unwrap()..]),
        None => text,
    };
    text.split("\r\n")
        .map(|l| match l.split_once(";tag=") {
            Some((head, _)) if l.starts_with("To:") => format!("{head};tag=T"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn the_stateless_challenge_is_the_registrars_and_its_nonce_works() {
    let mut f = Fixture::new();
    let at = (source().ip(), Transport::Udp);
    for user in ["arm1", "sha1", "ghost"] {
        let mut ua = Ua::new(user, "secret", Md5);
        let req = ua.register(&[CONTACT]);
        let front = f
            .reg
            .challenge_unauthenticated(T0, &req, at, &f.nonces, lookup)
            .unwrap();
        let stateful = f.send(T0, &req).response;
        assert_eq!(masked(&front), masked(&stateful), "{user}");
    }
    // Its nonce authenticates at the registrar.
    let mut ua = Ua::new("arm1", "secret", Md5);
    let req = ua.register(&[CONTACT]);
    let front = f
        .reg
        .challenge_unauthenticated(T0, &req, at, &f.nonces, lookup);
    ua.accept_challenge(&front.unwrap());
    assert_eq!(
        f.send(T0, &ua.register(&[CONTACT])).response.status_code,
        StatusCode::OK
    );
    // With credentials, or not a REGISTER: not for the front.
    let with_auth = ua.register(&[CONTACT]);
    assert!(
        f.reg
            .challenge_unauthenticated(T0, &with_auth, at, &f.nonces, lookup)
            .is_none()
    );
}

/// Through a proxy (RFC 3327): the Path, in however many header fields and lists, is kept
/// on the binding outermost first and copied into the 200; a Path that is not a list of
/// `<sip:…>` is a 400 and binds nothing.
#[test]
fn a_register_through_a_proxy_keeps_its_path() {
    let mut f = Fixture::new();
    let mut ua = Ua::new("arm1", "secret", Md5);
    let paths = [
        "Path: <sip:edge1.example;lr;received=sip:198.51.100.9:5060>, <sip:10.0.0.1;lr>",
        "Path: <sip:core.example;lr>",
    ];
    let out = f.login(T0, &mut ua, &[paths[0], paths[1], CONTACT]);
    assert_eq!(out.response.status_code, StatusCode::OK);
    assert_eq!(
        f.reg.bindings("arm1")[0].path,
        [
            "sip:edge1.example;lr;received=sip:198.51.100.9:5060",
            "sip:10.0.0.1;lr",
            "sip:core.example;lr",
        ]
    );
    let echoed: Vec<String> = path_headers(&ua.register(&paths))
        .chain(
            out.response
                .headers
                .iter()
                .filter(|h| matches!(h, Header::Path(_))),
        )
        .map(ToString::to_string)
        .collect();
    assert_eq!(echoed.len(), 4, "{echoed:?}");
    assert_eq!(echoed[..2], echoed[2..], "the 200 copies the Path");

    let mut f = Fixture::new();
    let mut ua = Ua::new("arm2", "secret", Md5);
    let out = f.login(T0, &mut ua, &["Path: sip:edge1.example;lr", CONTACT]);
    assert_eq!(out.response.status_code, StatusCode::BadRequest);
    assert!(f.reg.bindings("arm2").is_empty());
}
