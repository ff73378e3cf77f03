//! `cargo fuzz run sdp`: see [`sas_router_fuzz::sdp`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sas_router_fuzz::sdp(data));
