//! Tests: SIP INFO DTMF bodies.
use super::*;

#[test]
fn dtmf_relay_signal_and_duration() {
    assert_eq!(
        parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
        Ok(('5', Some(160)))
    );
    assert_eq!(
        parse_info(
            "Application/DTMF-Relay; charset=utf-8",
            b"duration = 250\nSIGNAL = #\n"
        ),
        Ok(('#', Some(250)))
    );
    assert_eq!(
        parse_info("application/dtmf-relay", b"Signal=*"),
        Ok(('*', None))
    );
    assert_eq!(
        parse_info("application/dtmf-relay", b"Signal=d\r\n"),
        Ok(('D', None))
    );
}

#[test]
fn dtmf_relay_numeric_star_and_hash() {
    assert_eq!(
        parse_info("application/dtmf-relay", b"Signal= 10\r\nDuration= 100\r\n"),
        Ok(('*', Some(100)))
    );
    assert_eq!(
        parse_info("application/dtmf-relay", b"Signal=11\r\n"),
        Ok(('#', None))
    );
}

#[test]
fn dtmf_relay_every_key() {
    for key in "0123456789*#ABCD".chars() {
        let body = format!("Signal={key}\r\nDuration=100\r\n");
        assert_eq!(
            parse_info("application/dtmf-relay", body.as_bytes()),
            Ok((key, Some(100)))
        );
    }
}

#[test]
fn dtmf_relay_bad_bodies() {
    let relay = |body: &[u8]| parse_info("application/dtmf-relay", body);
    assert_eq!(relay(b""), Err(DtmfError::MissingSignal));
    assert_eq!(relay(b"Duration=160\r\n"), Err(DtmfError::MissingSignal));
    assert_eq!(relay(b"Signal=\r\n"), Err(DtmfError::BadSignal));
    assert_eq!(relay(b"Signal=12\r\n"), Err(DtmfError::BadSignal));
    assert_eq!(relay(b"Signal=E\r\n"), Err(DtmfError::BadSignal));
    assert_eq!(relay(b"Signal=55\r\n"), Err(DtmfError::BadSignal));
    assert_eq!(
        relay(b"Signal=5\r\nDuration=-1\r\n"),
        Err(DtmfError::BadDuration)
    );
    assert_eq!(
        relay(b"Signal=5\r\nDuration=long\r\n"),
        Err(DtmfError::BadDuration)
    );
    assert_eq!(relay(b"Signal=\xff\r\n"), Err(DtmfError::NotUtf8));
    assert_eq!(relay(&[b'x'; 2000]), Err(DtmfError::BodyTooLong));
}

#[test]
fn plain_dtmf_body() {
    assert_eq!(parse_info("application/dtmf", b"7"), Ok(('7', None)));
    assert_eq!(parse_info("APPLICATION/DTMF", b" #\r\n"), Ok(('#', None)));
    assert_eq!(parse_info("application/dtmf", b"b\n"), Ok(('B', None)));
    assert_eq!(parse_info("application/dtmf", b"11"), Ok(('#', None)));
}

#[test]
fn plain_dtmf_bad_bodies() {
    assert_eq!(
        parse_info("application/dtmf", b""),
        Err(DtmfError::MissingSignal)
    );
    assert_eq!(
        parse_info("application/dtmf", b" \r\n"),
        Err(DtmfError::MissingSignal)
    );
    assert_eq!(
        parse_info("application/dtmf", b"12"),
        Err(DtmfError::BadSignal)
    );
    assert_eq!(
        parse_info("application/dtmf", b"x"),
        Err(DtmfError::BadSignal)
    );
}

#[test]
fn other_content_types_refused() {
    for ct in [
        "application/sdp",
        "text/plain",
        "",
        "application/dtmf-relayx",
    ] {
        assert_eq!(
            parse_info(ct, b"Signal=5"),
            Err(DtmfError::UnsupportedContentType),
            "{ct}"
        );
    }
}
