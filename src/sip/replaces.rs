//! The `Replaces` of an attended transfer (RFC 3891) as a phone puts it in a REFER's
//! `Refer-To` URI (`<sip:2001@router?Replaces=callid%3Bto-tag%3Dx%3Bfrom-tag%3Dy>`): which
//! dialog the transfer target takes over. Parsing and matching only, no IO.

use thiserror::Error;

/// The dialog a `Replaces` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Its Call-ID.
    pub call_id: String,
    /// The tag of the party receiving the Replaces (here: the router's).
    pub to_tag: Option<String>,
    /// The tag of the other party (the phone that placed the consultation call).
    pub from_tag: Option<String>,
}

/// A `Replaces` that cannot be read (the REFER is answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReplacesError {
    /// No Call-ID, or a bad escape.
    #[error("malformed Replaces in Refer-To")]
    Malformed,
}

impl Replaces {
    /// The `Replaces` header of a `Refer-To` value's URI, if it has one.
    pub fn from_refer_to(refer_to: &str) -> Result<Option<Replaces>, ReplacesError> {
        let uri = refer_to.trim().trim_start_matches('<');
        let uri = uri.split('>').next().unwrap_or(uri);
        let Some((_, headers)) = uri.split_once('?') else {
            return Ok(None);
        };
        let Some(value) = headers.split('&').find_map(|h| {
            let (name, value) = h.split_once('=')?;
            name.eq_ignore_ascii_case("Replaces").then_some(value)
        }) else {
            return Ok(None);
        };
        let value = unescape(value).ok_or(ReplacesError::Malformed)?;
        let mut parts = value.split(';');
        let call_id = parts.next().unwrap_or_default().trim().to_string();
        if call_id.is_empty() {
            return Err(ReplacesError::Malformed);
        }
        let (mut to_tag, mut from_tag) = (None, None);
        for part in parts {
            match part.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => {
                    to_tag = Some(v.trim().to_string())
                }
                Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => {
                    from_tag = Some(v.trim().to_string())
                }
                _ => {} // early-only and extensions: nothing to check here
            }
        }
        Ok(Some(Replaces {
            call_id,
            to_tag,
            from_tag,
        }))
    }

    /// Whether it names the dialog `call_id` whose tags are `local` (ours) and `remote`
    /// (RFC 3891 §3: to-tag against the local tag, from-tag against the remote one). A tag
    /// left out is not checked: the referring phone may not know ours (the Call-ID, random
    /// and only known to the two ends, still binds it), and the referrer must be the seat
    /// that placed that call, which the driver checks.
    pub fn matches(&self, call_id: &str, local: &str, remote: &str) -> bool {
        self.call_id == call_id
            && self.to_tag.as_deref().is_none_or(|t| t == local)
            && self.from_tag.as_deref().is_none_or(|t| t == remote)
    }
}

/// Percent-decoding of a URI header value (RFC 3261 §19.1.1: `;` `=` `@` arrive escaped).
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_escaped_replaces_of_a_refer_to() {
        let r = Replaces::from_refer_to(
            "<sip:2001@10.0.0.1:5060?Replaces=abc%40host%3Bto-tag%3Drouter1%3Bfrom-tag%3Ddial1>",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.call_id, "abc@host");
        assert_eq!(r.to_tag.as_deref(), Some("router1"));
        assert_eq!(r.from_tag.as_deref(), Some("dial1"));
        assert!(r.matches("abc@host", "router1", "dial1"));
        assert!(
            !r.matches("abc@host", "dial1", "router1"),
            "tags are not swapped"
        );
        assert!(!r.matches("other@host", "router1", "dial1"));
    }

    #[test]
    fn absent_tags_are_not_checked_and_blind_refers_have_none() {
        let r = Replaces::from_refer_to("sip:2001@r?Subject=x&replaces=c1%3Bfrom-tag%3Dd")
            .unwrap()
            .unwrap();
        assert_eq!(r.to_tag, None);
        assert!(r.matches("c1", "anything", "d"));
        assert!(!r.matches("c1", "anything", "e"));
        assert_eq!(Replaces::from_refer_to("<sip:2001@r>").unwrap(), None);
        assert_eq!(
            Replaces::from_refer_to("<sip:2001@r?Replaces=%3Bto-tag%3Dx>"),
            Err(ReplacesError::Malformed)
        );
        assert_eq!(
            Replaces::from_refer_to("<sip:2001@r?Replaces=c1%3>"),
            Err(ReplacesError::Malformed)
        );
    }
}
