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
    let names = Names::scan(head);
    if let Some(name) = names.missing() {
        return Some(format!("missing {name}"));
    }
    if let Some(defect) = dialog_defect(req) {
        return Some(defect.into());
    }
    if let Some(defect) = names.head_defect(head) {
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
    names.content_length_defect(packet).map(str::to_string)
}

/// What is wrong with a header section on its own (also said of a request that does not
/// parse at all, so its 400 names the defect when one is known).
pub(super) fn head_defect(head: &str) -> Option<String> {
    Names::scan(head).head_defect(head)
}

/// Headers counted in one pass over a head: the mandatory ones ([`MANDATORY`], in its
/// order), then Max-Forwards and Content-Length.
const COUNTED: [(&str, Option<&str>); 7] = [
    MANDATORY[0],
    MANDATORY[1],
    MANDATORY[2],
    MANDATORY[3],
    MANDATORY[4],
    ("max-forwards", None),
    ("content-length", Some("l")),
];

/// Headers that must appear once (RFC 4475 §3.3.9), as indexes into [`COUNTED`].
const SINGLE: [usize; 5] = [1, 2, 3, 4, 5];

/// Content-Length's index in [`COUNTED`].
const CONTENT_LENGTH: usize = 6;

/// What one pass over a head's header lines finds: how often each [`COUNTED`] header is
/// given, and the first Content-Length value. Every request goes through this: one pass,
/// no lowercased copies.
struct Names<'a> {
    counts: [usize; COUNTED.len()],
    content_length: Option<&'a str>,
}

impl<'a> Names<'a> {
    fn scan(head: &'a str) -> Self {
        let mut names = Names {
            counts: [0; COUNTED.len()],
            content_length: None,
        };
        for (name, value) in header_lines(head) {
            let Some(i) = COUNTED.iter().position(|(f, c)| is_named(name, f, *c)) else {
                continue;
            };
            names.counts[i] += 1;
            if i == CONTENT_LENGTH && names.content_length.is_none() {
                names.content_length = Some(value.trim());
            }
        }
        names
    }

    /// The first mandatory header missing, by full name.
    fn missing(&self) -> Option<&'static str> {
        let mandatory = COUNTED.iter().zip(self.counts).take(MANDATORY.len());
        mandatory
            .into_iter()
            .find(|(_, n)| *n == 0)
            .map(|((full, _), _)| *full)
    }

    /// The first single header given more than once, by full name.
    fn repeated(&self) -> Option<&'static str> {
        SINGLE
            .iter()
            .find(|i| self.counts[**i] > 1)
            .map(|i| COUNTED[*i].0)
    }

    /// Missing or repeated headers, or a lexical defect of `head` (what was scanned).
    fn head_defect(&self, head: &str) -> Option<String> {
        if let Some(name) = self.missing() {
            return Some(format!("missing {name}"));
        }
        if let Some(defect) = lexical_defect(head) {
            return Some(defect.into());
        }
        self.repeated()
            .map(|name| format!("{name} given more than once"))
    }

    /// Content-Length must be single, numeric and not larger than the datagram's body
    /// (RFC 3261 §18.3; extra trailing octets are allowed and ignored).
    fn content_length_defect(&self, packet: &[u8]) -> Option<&'static str> {
        let value = self.content_length?;
        if self.counts[CONTENT_LENGTH] > 1 {
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
}

/// The header lines of a head (its first line left out) split at their first colon, as
/// written (continuation lines are not folded in: one without a colon is skipped, as are
/// lines with none).
fn header_lines(head: &str) -> impl Iterator<Item = (&str, &str)> {
    head.lines().skip(1).filter_map(|l| l.split_once(':'))
}

/// Whether a header `name` as written (surrounding blanks allowed) is `full` or `compact`,
/// in any case. Every request goes through these checks: no lowercased copies.
fn is_named(name: &str, full: &str, compact: Option<&str>) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case(full) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
}

/// Header lines with continuation lines folded in (RFC 3261 §7.3.1); borrowed unless a
/// line was folded.
fn unfolded(head: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    let mut lines = head.lines().skip(1).peekable();
    std::iter::from_fn(move || {
        let first = lines.next()?;
        let mut line = std::borrow::Cow::Borrowed(first);
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            let folded = line.to_mut();
            folded.push(' ');
            folded.push_str(next.trim());
        }
        Some(line)
    })
}

/// Errors rsipstack's lenient header parsers let through: an unterminated quoted string in
/// an address header, and empty parameters in Via or Contact (RFC 4475 §3.1.2.1, §3.1.2.5).
fn lexical_defect(head: &str) -> Option<&'static str> {
    for line in unfolded(head) {
        let Some((name, value)) = line.split_once(':') else {
            return Some("header line without a colon");
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Some("invalid header name");
        }
        let address = ["from", "f", "to", "t"].map(|n| name.eq_ignore_ascii_case(n));
        let params = ["contact", "m", "via", "v"].map(|n| name.eq_ignore_ascii_case(n));
        let (address, params) = (address.contains(&true), params.contains(&true));
        if !address && !params {
            continue;
        }
        let (in_quotes, empty_param) = scan_value(value);
        if in_quotes {
            return Some("unterminated quoted string");
        }
        if address && let Some(defect) = display_name_defect(value) {
            return Some(defect);
        }
        if params && empty_param {
            return Some("empty header parameter");
        }
    }
    None
}

/// Reads an address header's value: whether a quoted string is left open, and whether,
/// outside quotes and blanks, a parameter or list element is empty (`;;`, `;,`, `,,`, or a
/// trailing `;` or `,`).
fn scan_value(value: &str) -> (bool, bool) {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut last: Option<char> = None;
    let mut empty = false;
    for c in value.chars() {
        match (in_quotes, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, _, '"') => in_quotes = !in_quotes,
            (false, _, c) if !c.is_whitespace() => {
                empty |= matches!((last, c), (Some(';'), ';' | ',') | (Some(','), ','));
                last = Some(c);
            }
            _ => {}
        }
    }
    (in_quotes, empty || matches!(last, Some(';' | ',')))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_are_folded_into_their_header() {
        let head = "INVITE sip:15@x SIP/2.0\r\nSubject: a\r\n  b\r\n\tc\r\nTo: <sip:15@x>";
        let lines: Vec<_> = unfolded(head).collect();
        assert_eq!(lines, ["Subject: a b c", "To: <sip:15@x>"]);
        assert!(matches!(lines[1], std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn empty_parameters_are_found_outside_quotes_only() {
        assert_eq!(scan_value(" <sip:a@x>;;tag=1"), (false, true));
        assert_eq!(scan_value(" <sip:a@x>; ,<sip:b@x>"), (false, true));
        assert_eq!(scan_value(" <sip:a@x>,<sip:b@x> ,"), (false, true));
        assert_eq!(scan_value(" \"a;;b\" <sip:a@x>;tag=1"), (false, false));
        assert_eq!(
            scan_value(" <sip:a@x>,;tag=1"),
            (false, false),
            "`,;` is not empty"
        );
        assert_eq!(
            scan_value(" \"a\\\" <sip:a@x>"),
            (true, false),
            "escaped quote"
        );
    }

    #[test]
    fn header_names_are_counted_in_any_case_and_compact_form() {
        let head = "X\r\nv: a\r\nVIA: b\r\nf: c\r\nTO: d\r\ni: e\r\ncseq: 1 INVITE\r\nT: f\r\nl: 0";
        let names = Names::scan(head);
        assert_eq!(names.counts, [2, 1, 2, 1, 1, 0, 1]);
        assert_eq!(names.missing(), None);
        assert_eq!(names.repeated(), Some("to"));
        assert_eq!(names.content_length, Some("0"));
        let names =
            Names::scan("X\r\nVia: a\r\nFrom: b\r\nTo: c\r\nMax-Forwards: 1\r\nmax-forwards: 2");
        assert_eq!(names.missing(), Some("call-id"));
        assert_eq!(names.repeated(), Some("max-forwards"));
    }
}
