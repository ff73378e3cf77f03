//! SIP text helpers shared by the load drivers (`webrtc_phones`, `mediagen`): enough SIP to
//! answer a router that talks to its seats and trunk, no parser. Each driver includes this
//! file as a module (`#[path]`): examples cannot share a library of their own.

/// A response to `request`: its Via, From, Call-ID and CSeq; its To, with `tag` unless it
/// has one; a Contact and an SDP body when given.
pub fn response(
    request: &str,
    status: &str,
    tag: Option<&str>,
    answer: Option<(&str, &str)>,
) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in headers(request, "Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    let to = headers(request, "To").first().copied().unwrap_or_default();
    let to = match tag {
        Some(tag) if !to.contains("tag=") => format!("{to};tag={tag}"),
        _ => to.to_owned(),
    };
    let one = |name| headers(request, name).first().copied().unwrap_or_default();
    text.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        one("From"),
        one("Call-ID"),
        one("CSeq"),
    ));
    match answer {
        Some((contact, sdp)) => text.push_str(&format!(
            "Contact: {contact}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => text.push_str("Content-Length: 0\r\n\r\n"),
    }
    text
}

/// The values of header `name` (full name, case-insensitive), in the head only.
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .skip(1)
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// A digest challenge parameter, quoted or not.
pub fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let Some(start) = challenge.find(&format!("{name}=")) else {
        return "";
    };
    let rest = challenge[start + name.len() + 1..].trim_start_matches('"');
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

pub fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or_default()
}
