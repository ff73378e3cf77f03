//! Maps keyed by what the router makes itself: call ids, seat ids (from the configuration),
//! timer names, admission numbers. Their hasher is `rustc-hash`'s (a multiply-rotate per
//! word, several times cheaper than SipHash on short keys); it has no key, so an attacker
//! who chose the keys could make them collide: maps keyed by anything from the network
//! (SIP Call-IDs and tags, user names, nonces, source addresses, tokens) keep std's
//! randomly keyed SipHash.

/// A hash map keyed by an internal id.
pub type IdMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// A hash set of internal ids.
pub type IdSet<K> = std::collections::HashSet<K, rustc_hash::FxBuildHasher>;
