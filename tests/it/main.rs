//! Every integration test in one binary: one link instead of one per file (the link of
//! the router with full dependencies was most of an incremental test build), and one
//! process whose port allocator ([`common::ports`]) hands each router and peer ports no
//! other test holds. Run one file's tests with `cargo test --test it e2e_media::`.
//!
//! Each file is a module; `common` is the shared harness (routers, SIPp peers, browser). A
//! new test file goes in this directory with a `mod` line below and `use crate::common;`.

mod common;

mod api_lists;
mod architecture;
mod cli_output;
mod crash;
mod cti_http;
mod dialplans_cli;
mod durability;
mod e2e_attended;
mod e2e_console;
mod e2e_cti;
mod e2e_edge;
mod e2e_failover;
mod e2e_forward;
mod e2e_fuzz;
mod e2e_guard;
mod e2e_jssip;
mod e2e_kernel_relay;
mod e2e_line_switch;
mod e2e_media;
mod e2e_memory;
mod e2e_overload;
mod e2e_prometheus;
mod e2e_queues;
mod e2e_recording;
mod e2e_reload;
mod e2e_sip_protocol;
mod e2e_sip_timers;
mod e2e_sip_tls;
mod e2e_sip_transports;
mod e2e_sip_ws;
mod e2e_sipp;
mod e2e_softphones;
mod e2e_srtp;
mod e2e_stuck;
mod e2e_supervise;
mod e2e_tls;
mod e2e_transfer;
mod e2e_wallboard;
mod fuzz_corpus;
mod media_tooling;
mod mediagen;
mod monitoring;
mod readme;
mod recordings_cli;
mod reports_cli;
mod shared_store;
mod sim_router;
