//! The bans in virtual time: counting, doubling, exemptions, bounded memory.

use super::*;

const S: u64 = SECOND;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([198, 51, 100, last])
}

fn at(ms: u64) -> Mono {
    Mono::from_millis(ms)
}

fn bans() -> Bans {
    let settings = BanSettings {
        admin_networks: vec!["10.0.0.0/8".parse().unwrap()],
        ..BanSettings::default()
    };
    Bans::new(settings, &[ip(1)])
}

fn fail(b: &mut Bans, t: u64, source: IpAddr, user: &str, times: u32) {
    for _ in 0..times {
        b.failed(at(t), source, user);
    }
}

#[test]
fn five_failures_ban_the_source_answered_once_then_silence() {
    let mut b = bans();
    fail(&mut b, 0, ip(9), "arm1", 4);
    assert_eq!(b.check(at(0), ip(9), Some("arm1")), Door::Open);
    fail(&mut b, 0, ip(9), "ghost", 1);
    assert_eq!(
        b.check(at(1000), ip(9), Some("arm2")),
        Door::Refuse { retry_after_s: 59 }
    );
    assert_eq!(
        b.check(at(2000), ip(9), None),
        Door::Silence { retry_after_s: 58 }
    );
    assert_eq!(b.check(at(2000), ip(8), Some("arm2")), Door::Open);
    assert!(matches!(
        b.poll_event(),
        Some(BanEvent::Banned {
            key: BanKey::Source(_),
            for_ms: 60_000,
            strike: 1
        })
    ));
    assert_eq!(b.check(at(60 * S), ip(9), None), Door::Open, "ban over");
    assert!(matches!(
        b.poll_event(),
        Some(BanEvent::Unbanned {
            key: BanKey::Source(_),
            how: Unban::Expired
        })
    ));
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    let mut b = bans();
    for t in 0..20 {
        fail(&mut b, t * 40 * S, ip(9), &format!("u{t}"), 2);
    }
    assert_eq!(b.check(at(800 * S), ip(9), None), Door::Open);
}

#[test]
fn repeated_bans_double_up_to_the_ceiling() {
    let mut b = bans();
    let mut t = 0;
    let mut lengths = Vec::new();
    for _ in 0..9 {
        fail(&mut b, t, ip(9), "x", 5);
        let ban = b
            .list(at(t))
            .into_iter()
            .find(|v| v.key == BanKey::Source(ip(9)));
        let left = ban.unwrap().remaining_s;
        lengths.push(left);
        t += left * S;
    }
    assert_eq!(lengths, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    // An hour without a ban forgives.
    t += 3600 * S;
    fail(&mut b, t, ip(9), "x", 5);
    let ban = b
        .list(at(t))
        .into_iter()
        .find(|v| v.key == BanKey::Source(ip(9)));
    assert_eq!(ban.unwrap().remaining_s, 60);
}

#[test]
fn trunk_and_admin_sources_are_never_banned() {
    let mut b = bans();
    for source in [ip(1), "10.1.2.3".parse().unwrap()] {
        fail(&mut b, 0, source, "nobody", 50);
        assert_eq!(b.check(at(0), source, None), Door::Open);
    }
    // The name they tried is banned, but not from the admin network.
    assert_eq!(
        b.check(at(0), "10.1.2.3".parse().unwrap(), Some("nobody")),
        Door::Open
    );
    assert!(matches!(
        b.check(at(0), ip(1), Some("nobody")),
        Door::Refuse { .. }
    ));
}

#[test]
fn a_user_ban_spares_the_users_own_phones() {
    let mut b = bans();
    b.succeeded(at(0), ip(20), "arm1");
    for (i, t) in (0..5).zip(0..) {
        b.failed(at(t), ip(30 + i), "arm1");
    }
    assert!(matches!(
        b.check(at(10), ip(40), Some("arm1")),
        Door::Refuse { .. }
    ));
    assert_eq!(
        b.check(at(10), ip(20), Some("arm1")),
        Door::Open,
        "its phone"
    );
    assert_eq!(
        b.check(at(10), ip(40), Some("arm2")),
        Door::Open,
        "other seats"
    );
    assert!(b.lift(at(20), &BanKey::User("arm1".into())));
    assert!(!b.lift(at(20), &BanKey::User("arm1".into())));
    assert_eq!(b.check(at(20), ip(40), Some("arm1")), Door::Open);
    let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(events.contains(&BanEvent::Unbanned {
        key: BanKey::User("arm1".into()),
        how: Unban::Lifted
    }));
}

#[test]
fn memory_is_bounded_and_bans_outlive_eviction() {
    let settings = BanSettings {
        capacity: 100,
        ..BanSettings::default()
    };
    let mut b = Bans::new(settings, &[]);
    fail(&mut b, 0, ip(9), "x", 5);
    for i in 0..100_000u32 {
        let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        b.failed(at(1), source, &format!("name{i}"));
    }
    assert!(b.sources.entries.len() <= 100 && b.users.entries.len() <= 100);
    assert!(b.sources.order.len() <= 100);
    assert_eq!(b.active(at(2)), (1, 1), "the bans survived the flood");
    assert!(matches!(b.check(at(2), ip(9), None), Door::Refuse { .. }));
}

#[test]
fn a_look_before_the_door_tells_nobody() {
    let mut b = bans();
    fail(&mut b, 0, ip(9), "x", 5);
    assert!(b.holds(at(1), ip(9), None));
    assert!(b.holds(at(1), ip(8), Some("x")));
    assert!(!b.holds(at(1), ip(8), Some("y")));
    assert!(
        matches!(b.check(at(1), ip(9), None), Door::Refuse { .. }),
        "still answered once"
    );
}
