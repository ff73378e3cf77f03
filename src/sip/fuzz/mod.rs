//! A deterministic mutational SIP fuzzer (no IO): valid messages of every method the router
//! serves ([`corpus`]), each bent by one to three seeded [`mutate`] operators. The same seed
//! gives the same messages, so any finding replays.
//!
//! Every case carries a marker (`fzc<index>x`) in its Call-ID, Via branch and From tag, so a
//! response can be traced to the case that caused it as long as one of those survives the
//! mutation. `net::fuzz` sends the cases to a running router; the unit tests here feed them
//! to the guard and the parsers in process.

pub mod corpus;
mod ending;
pub mod mutate;

pub use ending::{cancel, hang_up, request_uri};

use crate::sim_rng::Rng;
use std::net::SocketAddr;

/// One fuzz case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Position in the run (also in the marker).
    pub index: u64,
    /// The seed message's name (`INVITE`, `REGISTER`…).
    pub seed: &'static str,
    /// The operators applied, in order.
    pub mutations: Vec<&'static str>,
    /// The bytes to send.
    pub bytes: Vec<u8>,
}

impl Case {
    /// The marker this case's Call-ID, branch and tag carry.
    pub fn marker(&self) -> String {
        marker(self.index)
    }

    /// A one-line description (seed and operators) for reports.
    pub fn describe(&self) -> String {
        format!(
            "case {} ({} + {})",
            self.index,
            self.seed,
            self.mutations.join(" + ")
        )
    }
}

/// The marker of case `index`.
pub fn marker(index: u64) -> String {
    format!("fzc{index}x")
}

/// The case index a response (or any text) names, if its marker survived.
pub fn marked_case(text: &str) -> Option<u64> {
    let at = text.find("fzc")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    text[at + digits.len()..]
        .starts_with('x')
        .then(|| digits.parse().ok())
        .flatten()
}

/// Generates cases: `Fuzzer::new(seed, ..)` then [`Fuzzer::case`] for each index.
pub struct Fuzzer {
    rng: Rng,
    target: SocketAddr,
    local: SocketAddr,
    transport: &'static str,
    /// Percent of cases sent unmutated (valid traffic between the bad).
    pub clean_percent: u64,
}

impl Fuzzer {
    /// Cases for a router at `target`, sent from `local` over `transport` (`UDP`/`TCP`, as
    /// written in Via).
    pub fn new(seed: u64, target: SocketAddr, local: SocketAddr, transport: &'static str) -> Self {
        Self {
            // Xorshift needs a non-zero state.
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            target,
            local,
            transport,
            clean_percent: 5,
        }
    }

    /// Case `index`: a seed message with 0–3 mutations.
    pub fn case(&mut self, index: u64) -> Case {
        let seeds = corpus::SEEDS;
        let seed = seeds[self.rng.between(0, seeds.len() as u64 - 1) as usize];
        let context = corpus::Context {
            target: self.target,
            local: self.local,
            transport: self.transport,
            marker: marker(index),
        };
        let mut message = corpus::Message::parse(&corpus::build(seed, &context));
        let mut mutations = Vec::new();
        if !self.rng.chance(self.clean_percent) {
            for _ in 0..self.rng.between(1, 3) {
                mutations.push(mutate::apply(&mut self.rng, &mut message));
            }
        }
        Case {
            index,
            seed,
            mutations,
            bytes: message.into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests;
