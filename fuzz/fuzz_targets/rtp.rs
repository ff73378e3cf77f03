//! `cargo fuzz run rtp`: see [`sas_router_fuzz::rtp`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sas_router_fuzz::rtp(data));
