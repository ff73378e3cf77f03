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

/// The vendored rsipstack reads a From/To tag without parsing the whole header
/// (vendor/rsipstack/PATCHES.md, patch 8): it must read what the full parse reads.
#[cfg(test)]
mod tag_tests {
    use rsipstack::sip::headers::{From, To};
    use rsipstack::sip::prelude::{HasHeaders, ToTypedHeader};
    use rsipstack::sip::{Header, SipMessage};

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
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
        let mut seen = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let Ok(message) = SipMessage::try_from(&bytes[..]) else {
                continue;
            };
            for header in message.headers().iter() {
                if let Header::From(h) = header {
                    same_tag(h.value());
                    seen += 1;
                } else if let Header::To(h) = header {
                    same_tag(h.value());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 40, "{seen} headers");
    }
}
