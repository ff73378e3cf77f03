//! REGISTER handling (RFC 3261 §10), sans-IO.
//!
//! Owns the seat location service: bindings per username (contact, real packet source for
//! NAT traversal, expiry) and the translation of a REGISTER into the full response to send
//! back, digest authentication included. Time is passed in; nothing here does I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use rand::RngCore;
use rsipstack::sip::headers::untyped::{Allow, ContentLength, MinExpires, WwwAuthenticate};
use rsipstack::sip::prelude::*;
use rsipstack::sip::typed::Contact;
use rsipstack::sip::{Header, Headers, Method, Request, Response, StatusCode, Transport, Uri};

use crate::sip::digest::{AuthError, DigestAlgorithm, NonceStore, SeatCredential};
use crate::sip::digest_policy::TransportAlgorithms;
use crate::sip::seat_transports;
use crate::time::{EpochMillis, SECOND};

/// The algorithms to challenge a seat with over `transport`: its own lists if it has an
/// override, else the transport's default. A name we do not know gets the default
/// too, so that its 401 is the same as a seat's and reveals nothing (see
/// [`crate::sip::digest_policy`]).
fn offered<'a>(
    defaults: &'a TransportAlgorithms,
    seat: Option<&'a SeatCredential>,
    transport: Transport,
) -> &'a [DigestAlgorithm] {
    seat.and_then(|c| c.algorithms.as_ref())
        .unwrap_or(defaults)
        .for_transport(transport)
}

/// The 403 for a seat restricted to other transports than `transport`, before any
/// challenge (see [`seat_transports`]).
fn refused_transport(seat: Option<&SeatCredential>, transport: Transport) -> Option<StatusCode> {
    seat_transports::refusal(seat.and_then(|c| c.transports.as_deref()), transport)
}

/// The Path header fields of `req` (a proxy may add several, or one with a list).
fn path_headers(req: &Request) -> impl Iterator<Item = &Header> {
    req.headers.iter().filter(|h| matches!(h, Header::Path(_)))
}

/// The Path of a REGISTER, outermost hop first, each as the URI inside `<…>`; `None` when
/// an entry is not a `<sip:…>` name-addr.
fn path_of(req: &Request) -> Option<Vec<String>> {
    let values = req.headers.iter().filter_map(|h| match h {
        Header::Path(p) => Some(p.value()),
        _ => None,
    });
    let mut path = Vec::new();
    for entry in values.flat_map(split_name_addrs) {
        let inner = entry.trim().strip_prefix('<')?.split_once('>')?.0;
        let lower = inner.to_ascii_lowercase();
        if !lower.starts_with("sip:") && !lower.starts_with("sips:") {
            return None;
        }
        path.push(inner.to_owned());
    }
    Some(path)
}

/// Splits a header value at the commas outside `<…>` and quotes.
fn split_name_addrs(value: &str) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0u32, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Registrar policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RegistrarConfig {
    pub realm: String,
    pub min_expires_s: u32,
    pub max_expires_s: u32,
    pub default_expires_s: u32,
    /// Challenge algorithms per transport, for seats without their own and unknown names.
    pub digest: TransportAlgorithms,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: String::new(),
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 600,
            digest: TransportAlgorithms::default(),
        }
    }
}

/// One registered contact of a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub contact: Uri,
    /// Where the REGISTER actually came from: send requests here (NAT), not to `contact`.
    pub source: SocketAddr,
    pub transport: Transport,
    pub expires_at: EpochMillis,
    pub call_id: String,
    pub cseq: u32,
    /// Time of the last successful (re)registration of this contact.
    pub registered_at: EpochMillis,
    /// The REGISTER's Path (RFC 3327), outermost proxy first: requests to this contact
    /// carry it as their Route set and go to its first hop (a proxy such as Kamailio in
    /// front of several routers). Empty: the seat is reached directly.
    pub path: Vec<String>,
}

/// A seat's bindings were modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingChange {
    pub username: String,
    /// False when the user has no binding left.
    pub registered: bool,
}

/// What to do with a REGISTER: send `response`; apply `change` to seat presence.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    pub response: Response,
    pub change: Option<BindingChange>,
}

/// The location service: bindings per username, most recent first.
#[derive(Debug, Default)]
pub struct Registrar {
    config: RegistrarConfig,
    users: HashMap<String, Vec<Binding>>,
}

/// A REGISTER refused before any binding changed.
enum Reject {
    Status(StatusCode),
    Challenge { stale: bool },
    TooBrief,
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Self {
        Self {
            config,
            users: HashMap::new(),
        }
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes one REGISTER received from `source` over `transport`.
    pub fn handle_register(
        &mut self,
        now: EpochMillis,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        nonces: &mut NonceStore,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> RegisterOutcome {
        // The seat is the AOR: the To user.
        let user = req
            .to_header()
            .ok()
            .and_then(|to| to.uri().ok())
            .and_then(|uri| uri.auth.map(|a| a.user));
        let seat = user.as_deref().and_then(&lookup);
        if let Some(status) = refused_transport(seat.as_ref(), transport) {
            return RegisterOutcome {
                response: build_response(req, status, Vec::new()),
                change: None,
            };
        }
        let offered = offered(&self.config.digest, seat.as_ref(), transport).to_vec();
        match self.try_register(now, req, source, transport, nonces, &lookup) {
            Ok((username, change)) => {
                // RFC 3327 §5.3: the registrar copies the Path into its 200.
                let mut extra: Vec<Header> = path_headers(req).cloned().collect();
                for b in self.bindings(&username) {
                    if b.expires_at > now {
                        let left = (b.expires_at - now).div_ceil(SECOND);
                        let value = format!("<{}>;expires={left}", b.contact);
                        extra.push(Header::Contact(value.into()));
                    }
                }
                RegisterOutcome {
                    response: build_response(req, StatusCode::OK, extra),
                    change,
                }
            }
            Err(reject) => {
                let (status, extra) = match reject {
                    Reject::Status(StatusCode::MethodNotAllowed) => {
                        let allow = Header::Allow(Allow::new("REGISTER"));
                        (StatusCode::MethodNotAllowed, vec![allow])
                    }
                    Reject::Status(s) => (s, Vec::new()),
                    Reject::Challenge { stale } => {
                        self.challenge(now, source.ip(), nonces, stale, &offered)
                    }
                    Reject::TooBrief => {
                        let min = MinExpires::new(self.config.min_expires_s.to_string());
                        (StatusCode::IntervalTooBrief, vec![Header::MinExpires(min)])
                    }
                };
                RegisterOutcome {
                    response: build_response(req, status, extra),
                    change: None,
                }
            }
        }
    }

    /// Authenticates a request other than REGISTER (a seat's INVITE, arrived over
    /// `transport`) with the same nonces and credentials: the seat's username, or the response to send (401 challenge, 403,
    /// 400).
    pub fn authenticate_request(
        &self,
        now: EpochMillis,
        req: &Request,
        (source, transport): (IpAddr, Transport),
        nonces: &mut NonceStore,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> Result<String, Response> {
        let caller = req
            .from_header()
            .ok()
            .and_then(|f| f.uri().ok())
            .and_then(|uri| uri.auth.map(|a| a.user));
        let seat = caller.as_deref().and_then(&lookup);
        if let Some(status) = refused_transport(seat.as_ref(), transport) {
            return Err(build_response(req, status, Vec::new()));
        }
        self.authenticate(now, req, (source, transport), nonces, &lookup)
            .map_err(|reject| {
                let (status, extra) = match reject {
                    Reject::Challenge { stale } => {
                        // The seat calling is the From user.
                        let offered = offered(&self.config.digest, seat.as_ref(), transport);
                        self.challenge(now, source, nonces, stale, offered)
                    }
                    Reject::Status(s) => (s, Vec::new()),
                    Reject::TooBrief => (StatusCode::BadRequest, Vec::new()),
                };
                build_response(req, status, extra)
            })
    }

    /// The `401` that [`Registrar::handle_register`] gives a REGISTER carrying no
    /// credentials, without the registrar's state: it can be answered before any
    /// transaction exists (a flood of them then costs nothing). `None` for anything else.
    pub fn challenge_unauthenticated(
        &self,
        now: EpochMillis,
        req: &Request,
        (source, transport): (IpAddr, Transport),
        nonces: &NonceStore,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> Option<Response> {
        let credentials = req
            .headers
            .iter()
            .any(|h| matches!(h, Header::Authorization(_)));
        if req.method != Method::Register || credentials {
            return None;
        }
        let user = req.to_header().ok()?.typed().ok()?.uri.user()?.to_owned();
        req.call_id_header().ok()?;
        req.cseq_header().ok()?.typed().ok()?;
        let seat = lookup(&user);
        if let Some(status) = refused_transport(seat.as_ref(), transport) {
            return Some(build_response(req, status, Vec::new()));
        }
        let offered = offered(&self.config.digest, seat.as_ref(), transport);
        let (status, extra) = self.challenge(now, source, nonces, false, offered);
        Some(build_response(req, status, extra))
    }

    /// A 401 with one WWW-Authenticate per algorithm, sharing a fresh nonce.
    fn challenge(
        &self,
        now: EpochMillis,
        source: IpAddr,
        nonces: &NonceStore,
        stale: bool,
        offered: &[DigestAlgorithm],
    ) -> (StatusCode, Vec<Header>) {
        let headers = nonces
            .challenge(now, source, &self.config.realm, stale, offered)
            .into_iter()
            .map(|v| Header::WwwAuthenticate(WwwAuthenticate::new(v)))
            .collect();
        (StatusCode::Unauthorized, headers)
    }

    /// Authenticates and applies a REGISTER; returns the AOR user and the change, if any.
    fn try_register(
        &mut self,
        now: EpochMillis,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        nonces: &mut NonceStore,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> Result<(String, Option<BindingChange>), Reject> {
        let bad = || Reject::Status(StatusCode::BadRequest);
        if req.method != Method::Register {
            return Err(Reject::Status(StatusCode::MethodNotAllowed));
        }
        let aor_user = req
            .to_header()
            .ok()
            .and_then(|t| t.typed().ok())
            .and_then(|t| t.uri.user().map(str::to_owned))
            .ok_or_else(bad)?;
        let call_id = req.call_id_header().map_err(|_| bad())?.value().to_owned();
        let cseq = req
            .cseq_header()
            .ok()
            .and_then(|c| c.typed().ok())
            .ok_or_else(bad)?
            .seq;

        let username = self.authenticate(now, req, (source.ip(), transport), nonces, lookup)?;
        if username != aor_user {
            return Err(Reject::Status(StatusCode::Forbidden));
        }

        let mut contacts = Vec::new();
        for h in req.contact_headers() {
            contacts.extend(Contact::parse_header_list(h.value()).map_err(|_| bad())?);
        }
        let path = path_of(req).ok_or_else(bad)?;
        let header_expires = match req.expires_header() {
            None => None,
            Some(e) => Some(e.value().trim().parse::<u32>().map_err(|_| bad())?),
        };
        if contacts.is_empty() {
            return Ok((username, None)); // query: just list the bindings
        }

        if contacts.iter().any(is_wildcard) {
            // RFC 3261 §10.3 step 6: `*` must stand alone, with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(bad());
            }
            self.users.remove(&username);
            let change = BindingChange {
                username: username.clone(),
                registered: false,
            };
            return Ok((username, Some(change)));
        }

        // Validate everything before touching state: a 423 or 500 changes nothing.
        let mut updates = Vec::with_capacity(contacts.len());
        for c in &contacts {
            let asked = c
                .expires()
                .or(header_expires)
                .unwrap_or(self.config.default_expires_s);
            if asked != 0 && asked < self.config.min_expires_s {
                return Err(Reject::TooBrief);
            }
            updates.push((c.uri.clone(), asked.min(self.config.max_expires_s)));
        }
        let existing = self.users.get(&username).map(Vec::as_slice).unwrap_or(&[]);
        for (uri, _) in &updates {
            let stale_cseq = existing
                .iter()
                .any(|b| &b.contact == uri && b.call_id == call_id && cseq <= b.cseq);
            if stale_cseq {
                // RFC 3261 §10.3 step 7: out-of-order REGISTER, abort. The request is at
                // fault, not the router: 400 naming why (a 5xx would read as our bug).
                let reason = "Bad Request (CSeq not above the binding's)".to_string();
                return Err(Reject::Status(StatusCode::Other(400, reason)));
            }
        }

        let bindings = self.users.entry(username.clone()).or_default();
        // Bindings past their time go now (the call Router's expiry timer may not have
        // fired yet, or fired while the clock was stepped).
        bindings.retain(|b| b.expires_at > now);
        for (uri, expires_s) in updates {
            bindings.retain(|b| b.contact != uri);
            if expires_s > 0 {
                let binding = Binding {
                    contact: uri,
                    source,
                    transport,
                    expires_at: now + u64::from(expires_s) * SECOND,
                    call_id: call_id.clone(),
                    cseq,
                    registered_at: now,
                    path: path.clone(),
                };
                bindings.insert(0, binding);
            }
        }
        let registered = !bindings.is_empty();
        if !registered {
            self.users.remove(&username);
        }
        Ok((
            username.clone(),
            Some(BindingChange {
                username,
                registered,
            }),
        ))
    }

    /// Picks the Authorization for our realm (a UA may carry several) and verifies it,
    /// accepting only an algorithm the seat is challenged with over `transport`.
    fn authenticate(
        &self,
        now: EpochMillis,
        req: &Request,
        (source, transport): (IpAddr, Transport),
        nonces: &mut NonceStore,
        lookup: impl Fn(&str) -> Option<SeatCredential>,
    ) -> Result<String, Reject> {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Authorization(a) => Some(a.value()),
                _ => None,
            })
            .collect();
        let realm = &self.config.realm;
        let quoted = format!("\"{realm}\"");
        let Some(value) = values
            .iter()
            .find(|v| v.contains(&quoted))
            .or(values.first())
        else {
            return Err(Reject::Challenge { stale: false });
        };
        let offered_only = |user: &str| {
            let seat = lookup(user)?;
            let algorithms = offered(&self.config.digest, Some(&seat), transport).to_vec();
            Some(seat.restricted_to(&algorithms))
        };
        nonces
            .verify(now, source, realm, &req.method, value, offered_only)
            .map_err(|e| match e {
                AuthError::StaleNonce => Reject::Challenge { stale: true },
                AuthError::UnknownNonce | AuthError::Replay | AuthError::WrongRealm => {
                    Reject::Challenge { stale: false }
                }
                AuthError::Malformed => Reject::Status(StatusCode::BadRequest),
                // Same answer for both so that usernames cannot be probed. An algorithm we
                // cannot check is final too: re-challenging would loop.
                AuthError::UnknownUser
                | AuthError::WrongPassword
                | AuthError::UnsupportedAlgorithm => Reject::Status(StatusCode::Forbidden),
            })
    }

    /// Removes `username`'s binding to `contact`, which the call Router found expired at
    /// `now`; true if it was there. A binding refreshed meanwhile (its expiry more than a
    /// second ahead: the REGISTER crossed the Router's timer) is kept.
    pub fn remove_binding(&mut self, username: &str, contact: &str, now: EpochMillis) -> bool {
        let Some(bindings) = self.users.get_mut(username) else {
            return false;
        };
        let before = bindings.len();
        let refreshed = |b: &Binding| b.expires_at > now + SECOND;
        bindings.retain(|b| b.contact.to_string() != contact || refreshed(b));
        let removed = bindings.len() != before;
        if bindings.is_empty() {
            self.users.remove(username);
        }
        removed
    }

    /// The contacts of `username` and the time each has left at `now` (ms), for the call
    /// Router's expiry timers.
    pub fn time_left(&self, username: &str, now: EpochMillis) -> Vec<(String, u64)> {
        (self.bindings(username).iter())
            .map(|b| (b.contact.to_string(), b.expires_at.saturating_sub(now)))
            .collect()
    }

    /// Bindings of `username`, most recently (re)registered first. May include bindings
    /// already past `expires_at` until the call Router's expiry timer removes them.
    pub fn bindings(&self, username: &str) -> &[Binding] {
        self.users.get(username).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Usernames with at least one binding.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Puts back `username`'s bindings kept across a restart, dropping those expired at
    /// `now`; the change to apply to seat presence, if any is left.
    pub fn restore(
        &mut self,
        now: EpochMillis,
        username: &str,
        mut bindings: Vec<Binding>,
    ) -> Option<BindingChange> {
        bindings.retain(|b| b.expires_at > now);
        if bindings.is_empty() {
            return None;
        }
        bindings.sort_by_key(|b| std::cmp::Reverse(b.registered_at));
        self.users.insert(username.to_string(), bindings);
        Some(BindingChange {
            username: username.to_string(),
            registered: true,
        })
    }

    /// Forgets all bindings of `username` (e.g. seat removed from config); true if any.
    pub fn remove_user(&mut self, username: &str) -> bool {
        self.users.remove(username).is_some()
    }
}

fn is_wildcard(c: &Contact) -> bool {
    matches!(&c.uri.scheme, Some(rsipstack::sip::Scheme::Other(s)) if s == "*")
}

/// A response to `req` (RFC 3261 §8.2.6.2) with a random To tag: see [`stateless_response`].
fn build_response(req: &Request, status: StatusCode, extra: Vec<Header>) -> Response {
    let mut tag = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut tag);
    stateless_response(req, status, extra, &hex::encode(tag))
}

/// A response to `req` (RFC 3261 §8.2.6.2): Vias, From, To (tagged `tag` unless it has a
/// tag), Call-ID, CSeq copied, then `extra`, then Content-Length.
pub fn stateless_response(
    req: &Request,
    status: StatusCode,
    extra: Vec<Header>,
    tag: &str,
) -> Response {
    let mut headers = Headers::default();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::To(to) => {
                let tagged = to.typed().map(|t| t.tag().is_some()).unwrap_or(true);
                let mut value = to.value().to_owned();
                if !tagged {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
                headers.push(Header::To(value.into()));
            }
            _ => {}
        }
    }
    headers.extend(extra);
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Response {
        status_code: status,
        headers,
        ..Response::default()
    }
}

#[cfg(test)]
mod tests;
