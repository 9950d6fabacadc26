//! What every store must answer alike, run by tests/redis.rs (one script
//! per call) and tests/postgres.rs (the trait's two-call defaults).

use std::time::Duration;

use port25_shared::{LockRules, Scope, SharedState, Slot};

/// A login locked after 3 failures, an address after 4.
pub fn rules() -> LockRules {
    LockRules {
        window: Duration::from_secs(600),
        address_lock_after: 4,
        login_lock_after: 3,
        lockout: Duration::from_secs(300),
        known_for: Duration::from_secs(3600),
    }
}

/// The locks read with a failure or a success (AUTH's one round trip
/// after the password check): a lock refuses whatever the password was,
/// records nothing, takes no slot; a known device is spared the login's
/// lock but its failures are not counted during it.
pub async fn locks_are_read_with_the_outcome(a: &dyn SharedState, b: &dyn SharedState) {
    let rules = rules();
    let slot = |session| Slot { login: "alice", session, max: 1, ttl: Duration::from_secs(3600) };
    assert_eq!(a.succeeded_unless_locked("198.51.100.7", "alice", rules).await.unwrap(), Ok(()));
    for _ in 0..2 {
        assert_eq!(a.failed_unless_locked("203.0.113.1", Some("alice"), rules).await.unwrap(), Ok(vec![]));
    }
    let third = a.failed_unless_locked("203.0.113.2", Some("alice"), rules).await.unwrap();
    assert_eq!(third, Ok(vec![(Scope::Login, 3)]));

    // Node B: a wrong and a right password from elsewhere, both refused.
    let wrong = b.failed_unless_locked("203.0.113.9", Some("alice"), rules).await.unwrap();
    let (scope, left) = wrong.expect_err("a failure under the lock");
    assert_eq!(scope, Scope::Login);
    assert!(left > Duration::from_secs(290) && left <= Duration::from_secs(300), "{left:?}");
    let right = b.succeeded_entering_unless_locked("203.0.113.9", "alice", rules, slot("b:1")).await.unwrap();
    assert_eq!(right.map_err(|(s, _)| s), Err(Scope::Login));
    assert_eq!(
        b.succeeded_unless_locked("203.0.113.9", "alice", rules).await.unwrap().map_err(|(s, _)| s),
        Err(Scope::Login)
    );
    assert!(b.locked("203.0.113.9", Some("alice")).await.unwrap().is_some(), "the refused success ended nothing");

    // The known device: spared the login's lock (its wrong passwords are
    // wrong passwords), its slot taken.
    assert_eq!(
        a.succeeded_entering_unless_locked("198.51.100.7", "alice", rules, slot("a:1")).await.unwrap(),
        Ok(true)
    );
    assert!(!a.enter_session("alice", "a:2", 1, Duration::from_secs(3600)).await.unwrap(), "a:1 holds the one slot");
    for _ in 0..3 {
        assert_eq!(b.failed_unless_locked("198.51.100.7", Some("alice"), rules).await.unwrap(), Ok(vec![]));
    }
    // The refused success on node B took no slot: a:1 leaves, b:2 enters.
    a.leave_session("alice", "a:1").await.unwrap();
    assert!(b.enter_session("alice", "b:2", 1, Duration::from_secs(3600)).await.unwrap());

    // An address lock refuses any login from it, known device or not.
    for _ in 0..3 {
        assert_eq!(a.failed_unless_locked("192.0.2.5", None, rules).await.unwrap(), Ok(vec![]));
    }
    let fourth = a.failed_unless_locked("192.0.2.5", None, rules).await.unwrap();
    assert_eq!(fourth, Ok(vec![(Scope::Address, 4)]));
    let carol = b.succeeded_unless_locked("192.0.2.5", "carol", rules).await.unwrap();
    assert_eq!(carol.map_err(|(s, _)| s), Err(Scope::Address));
    assert_eq!(b.succeeded_unless_locked("192.0.2.6", "carol", rules).await.unwrap(), Ok(()));
}
