//! The cost of SRTP on a SIP leg: what the relay does per 20 ms G.711 packet (172 bytes of
//! RTP) on an SRTP leg, protect (to the peer) and unprotect (from the peer, with the
//! replay check), for both SDES suites. A bridged call with SRTP on one leg does each
//! 50 times a second per direction.
//!
//! Results: README.md, "SRTP (SDES)".

use criterion::{Criterion, criterion_group, criterion_main};
use sas_router::media::srtp::{KEY_MATERIAL_LEN, MasterKey, SrtpKeys, SrtpLeg, SrtpSuite};
use std::time::Duration;

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x08, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn bench(c: &mut Criterion) {
    let (a, b) = (
        MasterKey::new([1; KEY_MATERIAL_LEN]),
        MasterKey::new([2; KEY_MATERIAL_LEN]),
    );
    for (name, suite) in [
        ("80", SrtpSuite::AesCm128HmacSha1_80),
        ("32", SrtpSuite::AesCm128HmacSha1_32),
    ] {
        let keys = |local, remote| SrtpKeys {
            tag: 1,
            suite,
            local,
            remote,
        };
        let mut sender = SrtpLeg::new(&keys(a, b)).expect("context");
        let mut receiver = SrtpLeg::new(&keys(b, a)).expect("context");
        let mut seq = 0u16;
        c.bench_function(
            &format!("srtp_{name}_protect_and_unprotect_172_bytes"),
            |bench| {
                bench.iter(|| {
                    seq = seq.wrapping_add(1);
                    let wire = sender.protect_rtp(&packet(seq)).expect("protect");
                    receiver.unprotect_rtp(&wire).expect("unprotect")
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
