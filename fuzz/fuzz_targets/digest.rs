//! `cargo fuzz run digest`: see [`sas_router_fuzz::digest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sas_router_fuzz::digest(data));
