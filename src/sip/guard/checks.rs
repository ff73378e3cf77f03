//! The checks a parsed request must pass before it may start a transaction: mandatory
//! headers, lexical errors rsipstack's lenient parsers let through, single headers given
//! twice, CSeq/method agreement, Content-Length.

use super::MANDATORY;

/// Why a parsed request cannot start a transaction, if it cannot.
pub(super) fn request_defect(
    req: &rsipstack::sip::Request,
    head: &str,
    packet: &[u8],
) -> Option<String> {
    use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
    use rsipstack::transaction::key::{TransactionKey, TransactionRole};
    if let Some(name) = missing_header(head) {
        return Some(format!("missing {name}"));
    }
    if let Some(defect) = dialog_defect(req) {
        return Some(defect.into());
    }
    if let Some(defect) = head_defect(head) {
        return Some(defect);
    }
    if TransactionKey::from_request(req, TransactionRole::Server).is_err() {
        return Some("malformed Via, From, Call-ID or CSeq".into());
    }
    if req.from_header().and_then(|h| h.typed()).is_err()
        || req.to_header().and_then(|h| h.typed()).is_err()
        || req.contact_header().is_ok_and(|h| h.typed().is_err())
    {
        return Some("malformed From, To or Contact".into());
    }
    let cseq_method = req.cseq_header().ok().and_then(|c| c.method().ok());
    if cseq_method != Some(req.method) {
        return Some("CSeq method differs from the request method".into());
    }
    content_length_defect(head, packet).map(str::to_string)
}

/// What is wrong with a header section on its own (also said of a request that does not
/// parse at all, so its 400 names the defect when one is known).
pub(super) fn head_defect(head: &str) -> Option<String> {
    if let Some(name) = missing_header(head) {
        return Some(format!("missing {name}"));
    }
    if let Some(defect) = lexical_defect(head) {
        return Some(defect.into());
    }
    repeated_single_header(head).map(|name| format!("{name} given more than once"))
}

/// Content-Length must be single, numeric and not larger than the datagram's body
/// (RFC 3261 §18.3; extra trailing octets are allowed and ignored).
fn content_length_defect(head: &str, packet: &[u8]) -> Option<&'static str> {
    let values: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| {
            let n = n.trim();
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l")
        })
        .map(|(_, v)| v.trim())
        .collect();
    let value = values.first()?;
    if values.len() > 1 {
        return Some("several Content-Length values");
    }
    let Ok(declared) = value.parse::<usize>() else {
        return Some("invalid Content-Length");
    };
    let body = packet
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| packet.len() - at - 4)
        .unwrap_or(0);
    (declared > body).then_some("Content-Length larger than the message")
}

/// Header lines with continuation lines folded in (RFC 3261 §7.3.1).
fn unfolded(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.lines().skip(1) {
        match out.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Errors rsipstack's lenient header parsers let through: an unterminated quoted string in
/// an address header, and empty parameters in Via or Contact (RFC 4475 §3.1.2.1, §3.1.2.5).
fn lexical_defect(head: &str) -> Option<&'static str> {
    for line in unfolded(head) {
        let Some((name, value)) = line.split_once(':') else {
            return Some("header line without a colon");
        };
        if name.trim().is_empty() || !name.trim().chars().all(is_token_char) {
            return Some("invalid header name");
        }
        let name = name.trim().to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "from" | "f" | "to" | "t" | "contact" | "m" | "via" | "v"
        ) {
            continue;
        }
        let mut in_quotes = false;
        let mut escaped = false;
        let mut outside = String::new();
        for c in value.chars() {
            match (in_quotes, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, true, _) => escaped = false,
                (_, _, '"') => in_quotes = !in_quotes,
                (false, _, c) if !c.is_whitespace() => outside.push(c),
                _ => {}
            }
        }
        if in_quotes {
            return Some("unterminated quoted string");
        }
        if matches!(name.as_str(), "from" | "f" | "to" | "t")
            && let Some(defect) = display_name_defect(value)
        {
            return Some(defect);
        }
        let empty_param =
            [";;", ";,", ",,"].iter().any(|p| outside.contains(p)) || outside.ends_with([';', ',']);
        if matches!(name.as_str(), "contact" | "m" | "via" | "v") && empty_param {
            return Some("empty header parameter");
        }
    }
    None
}

/// What an INVITE needs to create a dialog (RFC 3261 §8.1.1.8, §12.1.1): a From tag and
/// exactly one Contact, a parseable SIP URI; without them rsipstack cannot build the dialog.
fn dialog_defect(req: &rsipstack::sip::Request) -> Option<&'static str> {
    use rsipstack::sip::prelude::HeadersExt;
    if req.method != rsipstack::sip::Method::Invite {
        return None;
    }
    if !matches!(req.from_header().map(|f| f.tag()), Ok(Ok(Some(_)))) {
        return Some("From without a tag");
    }
    match req.typed_contact_headers() {
        Err(_) => Some("malformed Contact"),
        Ok(contacts) if contacts.is_empty() => Some("missing Contact"),
        Ok(contacts) if contacts.len() > 1 => Some("more than one Contact"),
        Ok(_) => None,
    }
}

/// An unquoted display name must be tokens (RFC 3261 §25.1 `display-name`); a comma or
/// another separator there means the name should have been quoted (RFC 4475 §3.1.2.15).
fn display_name_defect(value: &str) -> Option<&'static str> {
    let value = value.trim_start();
    if value.starts_with('"') {
        return None;
    }
    let name = value.split_once('<')?.0;
    let bad = name
        .chars()
        .any(|c| c.is_ascii() && !c.is_ascii_whitespace() && !is_token_char(c));
    bad.then_some("unquoted display name with separators")
}

/// RFC 3261 §25.1 `token` characters.
pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// A header that must appear once and appears more (RFC 4475 §3.3.9).
fn repeated_single_header(head: &str) -> Option<&'static str> {
    const SINGLE: [(&str, Option<&str>); 5] = [
        ("from", Some("f")),
        ("to", Some("t")),
        ("call-id", Some("i")),
        ("cseq", None),
        ("max-forwards", None),
    ];
    SINGLE
        .iter()
        .find(|(full, compact)| {
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| {
                    let n = n.trim().to_ascii_lowercase();
                    n == *full || compact.is_some_and(|c| n == c)
                })
                .count()
                > 1
        })
        .map(|(full, _)| *full)
}

/// The first mandatory header a request lacks, by full or compact name.
fn missing_header(head: &str) -> Option<&'static str> {
    let names: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect();
    MANDATORY
        .iter()
        .find(|(full, compact)| {
            !names
                .iter()
                .any(|n| n == full || compact.is_some_and(|c| n == c))
        })
        .map(|(full, _)| *full)
}
