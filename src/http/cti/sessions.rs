//! CTI accounts and sessions: a seat's console logs in with its `console_password` (an
//! argon2 hash) when the seat has one, else with the seat's SIP password checked against the
//! configured HA1s (the router never stores clear passwords), and gets a random session
//! token kept in memory until logout or 12 h idle.
//!
//! Why two: SIP digest needs HA1 = MD5/SHA-256(user:realm:password), a fast hash that an
//! offline attacker with the configuration tests by billions a second; a console password
//! needs no such compatibility, so it may be a different, longer secret kept as argon2id.
//!
//! Tokens are held as their SHA-256 only: a map lookup's timing or a memory dump reveals
//! nothing usable. Failed logins are counted by [`crate::bans`], with SIP digest's (same
//! password): the caller checks the door before and reports the outcome after.

use crate::config::Config;
use crate::sip::digest::{DigestAlgorithm, SeatCredential, ha1};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A session unused this long is forgotten.
const IDLE_EXPIRY: Duration = Duration::from_secs(12 * 3600);
/// The role whose seats may supervise.
const SUPERVISOR_ROLE: &str = "superviseur";

/// A configured seat as the CTI sees it.
#[derive(Debug, Clone)]
pub struct SeatAccount {
    pub credential: SeatCredential,
    /// Argon2 PHC string of the console password (validated with the configuration).
    pub console_password: Option<String>,
    pub role: String,
}

impl SeatAccount {
    pub fn name(&self) -> &str {
        &self.credential.username
    }

    pub fn supervisor(&self) -> bool {
        self.role == SUPERVISOR_ROLE
    }

    /// The password matches the console password if there is one, else every HA1
    /// configured for the seat (and there is one at least).
    fn password_matches(&self, realm: &str, password: &str) -> bool {
        use argon2::PasswordVerifier;
        if let Some(phc) = &self.console_password {
            // The parameters (memory, passes) come from the hash itself.
            return argon2::PasswordHash::new(phc).is_ok_and(|hash| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            });
        }
        let expected = [
            (DigestAlgorithm::Md5, &self.credential.ha1_md5),
            (DigestAlgorithm::Sha256, &self.credential.ha1_sha256),
        ];
        let mut checked = false;
        let mut all = true;
        for (algorithm, stored) in expected {
            if let Some(stored) = stored {
                let computed = ha1(algorithm, self.name(), realm, password);
                let stored = stored.to_ascii_lowercase();
                all &= crate::http::constant_time_eq(computed.as_bytes(), stored.as_bytes());
                checked = true;
            }
        }
        checked && all
    }
}

/// Who an open session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub seat: String,
    pub supervisor: bool,
}

/// Why a login was refused: unknown seat or wrong password (never told apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCredentials;

/// The seats, their realm, and the open sessions.
pub struct CtiAccounts {
    realm: String,
    seats: Vec<SeatAccount>,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// SHA-256 of the token → session.
    sessions: HashMap<[u8; 32], (Session, Instant)>,
}

impl CtiAccounts {
    pub fn new(realm: String, seats: Vec<SeatAccount>) -> Self {
        Self {
            realm,
            seats,
            book: Mutex::default(),
        }
    }

    /// The `[[seats]]` of the configuration, in the `[sip] realm`.
    pub fn from_config(config: &Config) -> Self {
        let seats = config
            .seats
            .iter()
            .map(|s| SeatAccount {
                credential: s.credential(&config.sip.digest),
                console_password: s.console_password.clone(),
                role: s.role.clone(),
            })
            .collect();
        Self::new(config.sip.realm.clone(), seats)
    }

    pub fn seat(&self, name: &str) -> Option<&SeatAccount> {
        self.seats.iter().find(|s| s.name() == name)
    }

    /// The seat named in the admin token's `Overview` requests (the driver only answers
    /// configured seats): the first supervisor seat, else the first seat.
    pub fn overview_seat(&self) -> Option<&str> {
        self.seats
            .iter()
            .find(|s| s.supervisor())
            .or(self.seats.first())
            .map(SeatAccount::name)
    }

    /// Checks the password and opens a session: its token (hex) and the seat.
    pub async fn login(
        &self,
        seat: &str,
        password: &str,
        now: Instant,
    ) -> Result<(String, &SeatAccount), BadCredentials> {
        let Some(account) = self.seat(seat) else {
            return Err(BadCredentials);
        };
        // An argon2 check takes tens of milliseconds of CPU: on the blocking pool, not on
        // an async worker, which carries every call's SIP (a burst of logins, or someone
        // guessing, would hold up calls being set up).
        let (checked, realm, password) = (account.clone(), self.realm.clone(), password.to_owned());
        let matches =
            tokio::task::spawn_blocking(move || checked.password_matches(&realm, &password));
        if !matches.await.unwrap_or(false) {
            return Err(BadCredentials);
        }
        let mut book = self.book();
        book.sessions
            .retain(|_, (_, used)| now.duration_since(*used) < IDLE_EXPIRY);
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let session = Session {
            seat: seat.into(),
            supervisor: account.supervisor(),
        };
        book.sessions.insert(digest(&token), (session, now));
        Ok((token, account))
    }

    /// The session of `token`, if open and not idle too long (using it resets the clock).
    pub fn session(&self, token: &str, now: Instant) -> Option<Session> {
        let mut book = self.book();
        let key = digest(token);
        let (session, used) = book.sessions.get_mut(&key)?;
        if now.duration_since(*used) >= IDLE_EXPIRY {
            book.sessions.remove(&key);
            return None;
        }
        *used = now;
        Some(session.clone())
    }

    pub fn revoke(&self, token: &str) {
        self.book().sessions.remove(&digest(token));
    }

    /// Ends every console session of `seat` (a supervisor logged it out); how many.
    pub fn revoke_seat(&self, seat: &str) -> usize {
        let mut book = self.book();
        let before = book.sessions.len();
        book.sessions.retain(|_, (session, _)| session.seat != seat);
        before - book.sessions.len()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // The book stays consistent even if a holder panicked: every update is one insert
        // or remove.
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn accounts() -> CtiAccounts {
        let md5 = ha1(DigestAlgorithm::Md5, "arm1", "r", "secret");
        CtiAccounts::new(
            "r".into(),
            vec![SeatAccount {
                credential: SeatCredential {
                    username: "arm1".into(),
                    ha1_md5: Some(md5.to_uppercase()),
                    ha1_sha256: None,
                    algorithms: None,
                    transports: None,
                },
                console_password: None,
                role: "arm".into(),
            }],
        )
    }

    #[tokio::test]
    async fn sessions_expire_after_12_idle_hours() {
        let a = accounts();
        let t0 = Instant::now();
        let (token, _) = a.login("arm1", "secret", t0).await.unwrap();
        let later = t0 + IDLE_EXPIRY - Duration::from_secs(1);
        assert!(a.session(&token, later).is_some(), "use resets the clock");
        assert!(a.session(&token, later + IDLE_EXPIRY).is_none());
        assert!(a.session(&token, later).is_none(), "expired is gone");
    }

    #[tokio::test]
    async fn a_seat_logged_out_by_a_supervisor_loses_every_session() {
        let a = accounts();
        let t0 = Instant::now();
        let (one, _) = a.login("arm1", "secret", t0).await.unwrap();
        let (two, _) = a.login("arm1", "secret", t0).await.unwrap();
        assert_eq!(a.revoke_seat("arm2"), 0);
        assert_eq!(a.revoke_seat("arm1"), 2);
        assert!(a.session(&one, t0).is_none() && a.session(&two, t0).is_none());
    }

    fn with_console_password() -> CtiAccounts {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        let phc = argon2::Argon2::default()
            .hash_password(b"long console secret", &salt)
            .unwrap()
            .to_string();
        let mut a = accounts();
        a.seats[0].console_password = Some(phc);
        a
    }

    #[tokio::test]
    async fn a_console_password_replaces_the_sip_password_at_login() {
        let a = with_console_password();
        let t0 = Instant::now();
        assert!(a.login("arm1", "long console secret", t0).await.is_ok());
        assert_eq!(
            a.login("arm1", "secret", t0).await.err(),
            Some(BadCredentials),
            "the SIP password no longer opens the console"
        );
    }

    /// One async worker, as the router runs: the argon2 check must not hold it (the other
    /// task here, SIP in the router, runs while it goes on).
    #[tokio::test(flavor = "current_thread")]
    async fn an_argon2_check_leaves_the_async_worker_free() {
        let a = with_console_password();
        let turns = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&turns);
        let other = tokio::spawn(async move {
            loop {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        assert!(
            a.login("arm1", "long console secret", Instant::now())
                .await
                .is_ok()
        );
        other.abort();
        assert!(turns.load(Ordering::Relaxed) > 0);
    }
}
