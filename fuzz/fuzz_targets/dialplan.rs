//! `cargo fuzz run dialplan`: see [`sas_router_fuzz::dialplan`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sas_router_fuzz::dialplan(data));
