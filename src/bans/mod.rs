//! Password-guessing defence shared by SIP digest (REGISTER, seats' INVITEs) and the console
//! login, which check the same password: failures are counted per source address and per
//! user name; too many within a window bans the key, each new ban of the same key lasting
//! twice the last (up to a ceiling). A banned key is answered once (`429` with
//! `Retry-After`), then not at all until the ban ends.
//!
//! What is never held back: the trunk's addresses and the configured admin networks (source
//! bans), and for a user ban the admin networks and the sources that authenticated as that
//! user lately (its own phones and consoles keep working while someone guesses its
//! password elsewhere). Memory is bounded: each table keeps at most `capacity` keys and
//! forgets the oldest (a key still banned is kept while others can go).
//!
//! Sans-IO: time is a [`Mono`] passed in; [`Bans::poll_event`] says what to log and count.
//! [`shared::Guard`] is the drivers' handle.

mod network;
pub mod shared;
pub mod sip;

pub use network::Network;

use crate::time::{Mono, SECOND};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// `[bans]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BanSettings {
    /// This many failed authentications of one source, or of one user name, within
    /// `window_s` ban it.
    pub max_failures: u32,
    /// Seconds over which failures are counted.
    pub window_s: u32,
    /// First ban, seconds; each later ban of the same key doubles it.
    pub ban_s: u32,
    /// Longest ban, seconds; a key without a ban for this long starts again at `ban_s`.
    pub max_ban_s: u32,
    /// Keys remembered per table (sources, user names), oldest forgotten first.
    pub capacity: usize,
    /// Networks never banned and never held back by a user ban (the plateau's own).
    pub admin_networks: Vec<Network>,
    /// A source that authenticated as a user is not held back by that user's ban for this
    /// many seconds.
    pub proven_s: u32,
}

impl Default for BanSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_s: 60,
            ban_s: 60,
            max_ban_s: 3600,
            capacity: 10_000,
            admin_networks: Vec::new(),
            proven_s: 86_400,
        }
    }
}

impl BanSettings {
    /// Values out of range: the key (dotted) and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let checks = [
            (
                "bans.max_failures",
                self.max_failures >= 1,
                "must be at least 1",
            ),
            ("bans.window_s", self.window_s >= 1, "must be at least 1"),
            ("bans.ban_s", self.ban_s >= 1, "must be at least 1"),
            (
                "bans.max_ban_s",
                self.max_ban_s >= self.ban_s,
                "must be at least bans.ban_s",
            ),
            (
                "bans.capacity",
                self.capacity >= 100,
                "must be at least 100",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, reason)) => Err((key, reason)),
            None => Ok(()),
        }
    }
}

/// What to do with a request from a source, for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Go on.
    Open,
    /// Refuse with this `Retry-After`, seconds (first refusal of a ban).
    Refuse {
        /// Seconds left of the ban.
        retry_after_s: u64,
    },
    /// Banned and already told: no answer at all (where that is possible: SIP).
    Silence {
        /// Seconds left of the ban.
        retry_after_s: u64,
    },
}

impl Door {
    /// Seconds until the door opens again (0: open).
    pub fn retry_after_s(self) -> u64 {
        match self {
            Self::Open => 0,
            Self::Refuse { retry_after_s } | Self::Silence { retry_after_s } => retry_after_s,
        }
    }
}

/// What is banned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "key", rename_all = "lowercase")]
pub enum BanKey {
    /// A source address.
    Source(IpAddr),
    /// A user name (a seat's, or any name tried).
    User(String),
}

impl BanKey {
    /// `source` or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Source(_) => "source",
            Self::User(_) => "user",
        }
    }
}

/// How a ban ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unban {
    /// Its time was over.
    Expired,
    /// A supervisor lifted it.
    Lifted,
}

impl Unban {
    /// `expired` or `lifted`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Lifted => "lifted",
        }
    }
}

/// A change to report (log, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanEvent {
    /// A key was banned for `for_ms`; its `strike`-th ban in a row.
    Banned {
        /// The key.
        key: BanKey,
        /// Length of the ban.
        for_ms: u64,
        /// 1 for a first ban.
        strike: u32,
    },
    /// A ban ended.
    Unbanned {
        /// The key.
        key: BanKey,
        /// Why.
        how: Unban,
    },
}

/// One ban in force, as the supervisor API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanView {
    /// What is banned.
    #[serde(flatten)]
    pub key: BanKey,
    /// Seconds left.
    pub remaining_s: u64,
    /// How many bans in a row this is.
    pub strike: u32,
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    window_start: Mono,
    strikes: u32,
    banned_until: Option<Mono>,
    /// The refusal of the current ban has been answered.
    told: bool,
    last_ban_end: Mono,
}

/// Keys in insertion order, bounded.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    order: VecDeque<K>,
}

impl<K: Clone + Eq + Hash> Table<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn entry(&mut self, key: &K, now: Mono, capacity: usize) -> &mut Entry {
        if !self.entries.contains_key(key) {
            self.make_room(now, capacity);
            self.order.push_back(key.clone());
        }
        self.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            window_start: now,
            strikes: 0,
            banned_until: None,
            told: false,
            last_ban_end: now,
        })
    }

    /// Forgets the oldest keys until one more fits; keys still banned go to the back once.
    fn make_room(&mut self, now: Mono, capacity: usize) {
        let mut spared = 0;
        while self.entries.len() >= capacity.max(1) {
            let Some(old) = self.order.pop_front() else {
                return;
            };
            let banned = self
                .entries
                .get(&old)
                .and_then(|e| e.banned_until)
                .is_some_and(|until| until > now);
            if banned && spared < self.order.len() {
                spared += 1;
                self.order.push_back(old);
            } else {
                self.entries.remove(&old);
            }
        }
    }
}

/// The failure counts and bans.
#[derive(Debug)]
pub struct Bans {
    settings: BanSettings,
    /// Never banned as sources: the trunk and the admin networks.
    exempt: Vec<Network>,
    sources: Table<IpAddr>,
    users: Table<String>,
    /// Sources that authenticated as each user lately (a few per user).
    proven: HashMap<String, Vec<(IpAddr, Mono)>>,
    /// Earliest end of a ban in force.
    next_expiry: Option<Mono>,
    events: VecDeque<BanEvent>,
}

/// Sources remembered as proven per user.
const PROVEN_PER_USER: usize = 8;

impl Bans {
    /// `trunk`: the trunk's addresses, never banned.
    pub fn new(settings: BanSettings, trunk: &[IpAddr]) -> Self {
        let mut exempt: Vec<Network> = trunk.iter().map(|ip| Network::host(*ip)).collect();
        exempt.extend(settings.admin_networks.iter().copied());
        Self {
            settings,
            exempt,
            sources: Table::new(),
            users: Table::new(),
            proven: HashMap::new(),
            next_expiry: None,
            events: VecDeque::new(),
        }
    }

    fn admin(&self, source: IpAddr) -> bool {
        self.settings
            .admin_networks
            .iter()
            .any(|n| n.contains(source))
    }

    fn exempt(&self, source: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(source))
    }

    fn proven(&self, source: IpAddr, user: &str, now: Mono) -> bool {
        let horizon = u64::from(self.settings.proven_s) * SECOND;
        self.proven.get(user).is_some_and(|list| {
            list.iter()
                .any(|(ip, at)| *ip == source && now.saturating_sub(*at) < horizon)
        })
    }

    /// Whether a request from `source` (naming `user`, if it names one) may go on.
    pub fn check(&mut self, now: Mono, source: IpAddr, user: Option<&str>) -> Door {
        self.expire(now);
        if !self.exempt(source)
            && let Some(door) = door(self.sources.entries.get_mut(&source), now)
        {
            return door;
        }
        if let Some(user) = user
            && !self.admin(source)
            && !self.proven(source, user, now)
            && let Some(door) = door(self.users.entries.get_mut(user), now)
        {
            return door;
        }
        Door::Open
    }

    /// Whether [`Bans::check`] would hold the request back, without counting it as told.
    pub fn holds(&self, now: Mono, source: IpAddr, user: Option<&str>) -> bool {
        let banned = |e: Option<&Entry>| e.and_then(|e| e.banned_until).is_some_and(|u| u > now);
        if !self.exempt(source) && banned(self.sources.entries.get(&source)) {
            return true;
        }
        user.is_some_and(|user| {
            !self.admin(source)
                && !self.proven(source, user, now)
                && banned(self.users.entries.get(user))
        })
    }

    /// A failed authentication from `source` as `user`.
    pub fn failed(&mut self, now: Mono, source: IpAddr, user: &str) {
        self.expire(now);
        if !self.exempt(source) {
            let key = BanKey::Source(source);
            let entry = self.sources.entry(&source, now, self.settings.capacity);
            let event = count_failure(entry, now, &self.settings, key);
            self.banned(event);
        }
        let key = BanKey::User(user.to_string());
        let entry = self
            .users
            .entry(&user.to_string(), now, self.settings.capacity);
        let event = count_failure(entry, now, &self.settings, key);
        self.banned(event);
    }

    /// A successful authentication from `source` as `user`: that source is proven for it.
    pub fn succeeded(&mut self, now: Mono, source: IpAddr, user: &str) {
        if !self.proven.contains_key(user) && self.proven.len() >= self.settings.capacity {
            return; // only configured users authenticate: never reached in practice
        }
        let list = self.proven.entry(user.to_string()).or_default();
        list.retain(|(ip, _)| *ip != source);
        list.push((source, now));
        if list.len() > PROVEN_PER_USER {
            list.remove(0);
        }
    }

    fn banned(&mut self, event: Option<(BanEvent, Mono)>) {
        if let Some((event, until)) = event {
            self.next_expiry = Some(self.next_expiry.map_or(until, |t| t.min(until)));
            self.events.push_back(event);
        }
    }

    /// Ends the bans whose time is over.
    fn expire(&mut self, now: Mono) {
        if self.next_expiry.is_none_or(|t| t > now) {
            return;
        }
        let mut next = None;
        let sources = self
            .sources
            .entries
            .iter_mut()
            .map(|(k, e)| (BanKey::Source(*k), e));
        let users = self
            .users
            .entries
            .iter_mut()
            .map(|(k, e)| (BanKey::User(k.clone()), e));
        for (key, entry) in sources.chain(users) {
            match entry.banned_until {
                Some(until) if until <= now => {
                    entry.banned_until = None;
                    entry.last_ban_end = until;
                    let how = Unban::Expired;
                    self.events.push_back(BanEvent::Unbanned { key, how });
                }
                Some(until) => next = Some(next.map_or(until, |t: Mono| t.min(until))),
                None => {}
            }
        }
        self.next_expiry = next;
    }

    /// Lifts a ban; false if `key` is not banned.
    pub fn lift(&mut self, now: Mono, key: &BanKey) -> bool {
        self.expire(now);
        let entry = match key {
            BanKey::Source(ip) => self.sources.entries.get_mut(ip),
            BanKey::User(name) => self.users.entries.get_mut(name),
        };
        let Some(entry) = entry.filter(|e| e.banned_until.is_some()) else {
            return false;
        };
        entry.banned_until = None;
        entry.failures = 0;
        entry.last_ban_end = now;
        let (key, how) = (key.clone(), Unban::Lifted);
        self.events.push_back(BanEvent::Unbanned { key, how });
        true
    }

    /// The bans in force, longest left first.
    pub fn list(&mut self, now: Mono) -> Vec<BanView> {
        self.expire(now);
        let sources = self
            .sources
            .entries
            .iter()
            .map(|(k, e)| (BanKey::Source(*k), e));
        let users = self
            .users
            .entries
            .iter()
            .map(|(k, e)| (BanKey::User(k.clone()), e));
        let mut list: Vec<BanView> = sources
            .chain(users)
            .filter_map(|(key, e)| {
                let until = e.banned_until?;
                Some(BanView {
                    key,
                    remaining_s: until.saturating_sub(now).div_ceil(SECOND),
                    strike: e.strikes,
                })
            })
            .collect();
        list.sort_by_key(|v| std::cmp::Reverse(v.remaining_s));
        list
    }

    /// Bans in force by kind: (sources, users).
    pub fn active(&mut self, now: Mono) -> (usize, usize) {
        self.expire(now);
        let banned = |e: &&Entry| e.banned_until.is_some_and(|u| u > now);
        let sources = self.sources.entries.values().filter(banned).count();
        (sources, self.users.entries.values().filter(banned).count())
    }

    /// The next change to report.
    pub fn poll_event(&mut self) -> Option<BanEvent> {
        self.events.pop_front()
    }
}

/// The door of a key's entry: refuse once, then silence, while banned.
fn door(entry: Option<&mut Entry>, now: Mono) -> Option<Door> {
    let entry = entry?;
    let until = entry.banned_until.filter(|until| *until > now)?;
    let retry_after_s = until.saturating_sub(now).div_ceil(SECOND);
    if entry.told {
        return Some(Door::Silence { retry_after_s });
    }
    entry.told = true;
    Some(Door::Refuse { retry_after_s })
}

/// Counts one failure; the ban it triggers, if any, and its end.
fn count_failure(
    entry: &mut Entry,
    now: Mono,
    settings: &BanSettings,
    key: BanKey,
) -> Option<(BanEvent, Mono)> {
    if entry.banned_until.is_some_and(|until| until > now) {
        return None; // refused at the door; nothing more to learn
    }
    let window = u64::from(settings.window_s) * SECOND;
    if now.saturating_sub(entry.window_start) >= window {
        entry.window_start = now;
        entry.failures = 0;
    }
    entry.failures += 1;
    if entry.failures < settings.max_failures.max(1) {
        return None;
    }
    let max_ban = u64::from(settings.max_ban_s) * SECOND;
    if entry.strikes > 0 && now.saturating_sub(entry.last_ban_end) >= max_ban {
        entry.strikes = 0; // a long good behaviour forgives
    }
    entry.strikes += 1;
    let doubled =
        (u64::from(settings.ban_s) * SECOND).saturating_mul(1 << (entry.strikes - 1).min(20));
    let for_ms = doubled.min(max_ban.max(SECOND));
    let until = now.saturating_add(for_ms);
    entry.banned_until = Some(until);
    entry.told = false;
    entry.failures = 0;
    entry.window_start = now;
    let strike = entry.strikes;
    Some((
        BanEvent::Banned {
            key,
            for_ms,
            strike,
        },
        until,
    ))
}

#[cfg(test)]
mod tests;
