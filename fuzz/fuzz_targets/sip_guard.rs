//! `cargo fuzz run sip_guard`: see [`sas_router_fuzz::sip_guard`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sas_router_fuzz::sip_guard(data));
