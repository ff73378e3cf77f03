//! DTMF carried in SIP INFO request bodies.
//!
//! Owns [`parse_info`] for the two bodies phones actually send: `application/dtmf-relay`
//! (`Signal=5` / `Duration=160` lines, the Cisco format) and `application/dtmf` (just the
//! key). Turning the result into a [`super::DigitEvent`] is left to the caller, who knows
//! when the request arrived.

use super::DtmfError;

#[cfg(test)]
mod tests;

/// Bodies longer than this are not DTMF: refuse before scanning them.
const MAX_BODY_LEN: usize = 1024;

/// Parses an INFO body into the key and, if given, the duration in milliseconds.
///
/// `content_type` is the Content-Type header value; parameters and case are ignored.
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<(char, Option<u32>), DtmfError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let relay = if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        true
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        false
    } else {
        return Err(DtmfError::UnsupportedContentType);
    };
    if body.len() > MAX_BODY_LEN {
        return Err(DtmfError::BodyTooLong);
    }
    let text = std::str::from_utf8(body).map_err(|_| DtmfError::NotUtf8)?;
    if relay {
        parse_relay(text)
    } else {
        let value = text.trim();
        if value.is_empty() {
            return Err(DtmfError::MissingSignal);
        }
        Ok((parse_signal(value)?, None))
    }
}

/// `Signal=<key>` and optional `Duration=<ms>` lines, in any order and case.
fn parse_relay(text: &str) -> Result<(char, Option<u32>), DtmfError> {
    let mut signal = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("signal") {
            signal = Some(parse_signal(value)?);
        } else if key.eq_ignore_ascii_case("duration") {
            duration = Some(value.parse::<u32>().map_err(|_| DtmfError::BadDuration)?);
        }
    }
    let signal = signal.ok_or(DtmfError::MissingSignal)?;
    Ok((signal, duration))
}

/// A key as phones spell it: `0`-`9`, `*`, `#`, `A`-`D` (any case), or `10`/`11` which
/// some phones send for `*`/`#` (their RFC 4733 event codes).
fn parse_signal(value: &str) -> Result<char, DtmfError> {
    match value {
        "10" => return Ok('*'),
        "11" => return Ok('#'),
        _ => {}
    }
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ ('0'..='9' | '*' | '#')), None) => Ok(c),
        (Some(c @ ('A'..='D' | 'a'..='d')), None) => Ok(c.to_ascii_uppercase()),
        _ => Err(DtmfError::BadSignal),
    }
}
