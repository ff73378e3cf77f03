//! SIP edge: what each request means for the router, around rsipstack.
//!
//! rsipstack owns transports, transactions and dialogs. Here: the malformed-input guard in
//! front of every transport, called-number normalisation for trunk admission, the
//! registrar of seat bindings and the digest authentication it relies on (with which
//! algorithms each transport and seat is challenged), the `Replaces` of
//! attended transfers (sans-IO), the transports each seat may use, and the deterministic mutational fuzzer that tests them.

pub mod digest;
pub mod digest_policy;
pub mod fuzz;
pub mod guard;
pub use sas_core::sip::{numbers, origin};
pub mod registrar;
pub mod replaces;
pub mod seat_transports;

/// Every header of the RFC 4475 torture messages (tests/torture) that parse.
#[cfg(test)]
fn torture_headers() -> Vec<rsipstack::sip::Header> {
    use rsipstack::sip::SipMessage;
    use rsipstack::sip::prelude::HasHeaders;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    let mut headers = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        if let Ok(message) = SipMessage::try_from(&bytes[..]) {
            headers.extend(message.headers().iter().cloned());
        }
    }
    headers
}

/// The vendored rsipstack reads a From/To tag without parsing the whole header
/// (vendor/rsipstack/PATCHES.md, patch 8): it must read what the full parse reads.
#[cfg(test)]
mod tag_tests {
    use rsipstack::sip::Header;
    use rsipstack::sip::headers::{From, To};
    use rsipstack::sip::prelude::ToTypedHeader;

    fn same_tag(value: &str) {
        let fast = From::new(value).tag().ok().flatten();
        if let Ok(typed) = From::new(value).typed() {
            assert_eq!(fast, typed.tag().cloned(), "From: {value}");
        }
        let fast = To::new(value).tag().ok().flatten();
        if let Ok(typed) = To::new(value).typed() {
            assert_eq!(fast, typed.tag().cloned(), "To: {value}");
        }
    }

    #[test]
    fn the_quick_tag_reads_what_the_full_parse_reads() {
        for value in [
            "<sip:a@x>;tag=1",
            " <sip:a@x> ; tag=abc ;other",
            "Bob <sip:bob@example.com;transport=udp>;TAG=Z9;x=y",
            "<sip:a@x>;x=1;tag=2;tag=3",
            "<sip:a@x>;;tag=1",
            "<sip:a@x>;tag",
            "<sip:a@x>;tag =1",
            "<sip:a@x>;tag= 1",
            "<sip:a@x>",
            "\"A <b>\" <sip:a@x>;tag=q",
            "sip:a@x;tag=9",
            "<sip:a@x;tag=uri-param>;tag=header",
        ] {
            same_tag(value);
        }
        // Every From and To of the RFC 4475 torture messages.
        let mut seen = 0;
        for header in super::torture_headers() {
            if let Header::From(h) = &header {
                same_tag(h.value());
                seen += 1;
            } else if let Header::To(h) = &header {
                same_tag(h.value());
                seen += 1;
            }
        }
        assert!(seen >= 40, "{seen} headers");
    }
}

/// The vendored rsipstack reads a Via's `branch` for a transaction's key without parsing
/// the whole Via (vendor/rsipstack/PATCHES.md, patch 9): the key must carry the branch the
/// full parse reads, or the sent-by when there is none.
#[cfg(test)]
mod via_branch_tests {
    use rsipstack::sip::headers::{CSeq, CallId, From, Via};
    use rsipstack::sip::prelude::ToTypedHeader;
    use rsipstack::sip::{Header, Method, Request, Uri, Version};
    use rsipstack::transaction::key::{TransactionKey, TransactionRole};

    /// `value` as a request's Via header: the key is built from its first hop.
    fn same_branch(value: &str) {
        let Ok(typed) = Via::new(value).first_value().and_then(|v| v.typed()) else {
            return;
        };
        let request = Request {
            method: Method::Options,
            uri: Uri::try_from("sip:a@x").unwrap(),
            headers: vec![
                Via::new(value).into(),
                CSeq::new("1 OPTIONS").into(),
                From::new("<sip:b@x>;tag=t1").into(),
                CallId::new("c1").into(),
            ]
            .into(),
            version: Version::V2,
            body: Default::default(),
        };
        let key = TransactionKey::from_request(&request, TransactionRole::Server)
            .unwrap()
            .to_string();
        let expected = match typed.branch() {
            Some(branch) => format!("s.OPTIONS_1_c1_t1_{branch}"),
            None => format!("s.OPTIONS_1_c1_t1_{}.2543", typed.uri.host_with_port),
        };
        assert_eq!(key, expected, "Via: {value}");
    }

    #[test]
    fn the_quick_branch_reads_what_the_full_parse_reads() {
        for value in [
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
            " SIP/2.0/UDP host ; rport ; BRANCH=z9hG4bKx ;received=1.2.3.4",
            "SIP/2.0/TCP [::1]:5060;received=::1;branch=z9hG4bK-a;branch=z9hG4bK-b",
            "SIP/2.0/UDP h;branch",
            "SIP/2.0/UDP h;branch =z9hG4bK-spaced-name",
            "SIP/2.0/UDP h;branch= z9hG4bK-spaced-value",
            "SIP/2.0/UDP h;;branch=z9hG4bK-empty-part",
            "SIP/2.0/UDP h;x=branch=1;branch=z9hG4bK-2",
            "SIP/2.0/UDP h:5060",
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashd92;rport",
        ] {
            same_branch(value);
        }
        // Every Via of the RFC 4475 torture messages.
        let mut seen = 0;
        for header in super::torture_headers() {
            if let Header::Via(h) = &header {
                same_branch(h.value());
                seen += 1;
            }
        }
        assert!(seen >= 30, "{seen} headers");
    }
}
