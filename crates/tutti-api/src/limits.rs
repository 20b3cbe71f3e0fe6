//! Limits on what one client may make the API do: who the client is ([`ClientAddr`], the TCP
//! peer's address), failed sign-ins counted per username *and* address with a growing delay
//! ([`LoginLimiter`]), requests per address for unauthenticated creations such as guest tokens
//! ([`RateLimiter`], a token bucket), and the slots for password hashing ([`PasswordGate`]:
//! argon2id needs about 19 MiB and a core for a while, so only a few run at once and the rest
//! are told to retry).
//!
//! Addresses are grouped the way one party usually holds them: an IPv4 address, an IPv6 /64
//! (an IPv4-mapped IPv6 address counts as its IPv4 address).
//!
//! Must never: lock an account for everyone (a name's failures from one address never slow
//! another address), grow without bound (every map is capped and forgets idle entries), or
//! read the clock itself (callers pass `now_ms`, so tests control time).

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The client's address: the TCP peer of the connection (the server's accept loop puts it into
/// each request as `ConnectInfo<SocketAddr>`). Without it (the API served by something else) every
/// client counts as `0.0.0.0`, so limits still hold, shared by all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr(ip))
    }
}

/// The group an address is limited as: itself for IPv4, its /64 for IPv6.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Failures of one key: how many, and when the last one was.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// A map of failure counts with a size cap; entries idle for [`LoginLimiter::FORGET_MS`] go.
struct FailureMap<K> {
    map: HashMap<K, Failures>,
}

impl<K> Default for FailureMap<K> {
    fn default() -> Self {
        FailureMap {
            map: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> FailureMap<K> {
    fn get(&self, k: &K, now_ms: i64) -> Option<Failures> {
        self.map
            .get(k)
            .copied()
            .filter(|f| now_ms - f.last_ms < LoginLimiter::FORGET_MS)
    }

    fn add(&mut self, k: K, now_ms: i64) {
        if !self.map.contains_key(&k) && self.map.len() >= LoginLimiter::MAX_ENTRIES {
            self.make_room(now_ms);
        }
        let count = self.get(&k, now_ms).map_or(0, |f| f.count);
        self.map.insert(
            k,
            Failures {
                count: count.saturating_add(1),
                last_ms: now_ms,
            },
        );
    }

    /// Drops forgotten entries; when none were, the one idle longest.
    fn make_room(&mut self, now_ms: i64) {
        self.map
            .retain(|_, f| now_ms - f.last_ms < LoginLimiter::FORGET_MS);
        if self.map.len() < LoginLimiter::MAX_ENTRIES {
            return;
        }
        let oldest = self
            .map
            .iter()
            .min_by_key(|(_, f)| f.last_ms)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.map.remove(&k);
        }
    }

    fn remove(&mut self, k: &K) {
        self.map.remove(k);
    }
}

#[derive(Default)]
struct LoginState {
    /// By (lower-cased username, address group).
    pairs: FailureMap<(String, IpAddr)>,
    /// By address group, whatever the name.
    addrs: FailureMap<IpAddr>,
}

/// Failed sign-ins, counted per username and address and per address. A pair that failed
/// [`LoginLimiter::PAIR_FREE`] times, or an address that failed [`LoginLimiter::ADDR_FREE`]
/// times (any names), must wait [`LoginLimiter::FIRST_DELAY_MS`] after its last failure, twice
/// that after the next one, and so on up to [`LoginLimiter::MAX_DELAY_MS`]; attempts during the
/// wait are refused without checking the password. Other addresses are never slowed, so failing
/// sign-ins cannot lock an account out. Counts are forgotten [`LoginLimiter::FORGET_MS`] after
/// the last failure; a success clears its pair.
#[derive(Default)]
pub struct LoginLimiter {
    state: Mutex<LoginState>,
}

impl LoginLimiter {
    /// Failures of one name from one address before the delays start.
    pub const PAIR_FREE: u32 = 5;
    /// Failures from one address (any names) before the delays start.
    pub const ADDR_FREE: u32 = 20;
    /// The first delay, milliseconds; each further failure doubles it.
    pub const FIRST_DELAY_MS: i64 = 30_000;
    /// The longest delay, milliseconds.
    pub const MAX_DELAY_MS: i64 = 15 * 60_000;
    /// Counts are forgotten this long after their last failure, milliseconds.
    pub const FORGET_MS: i64 = 30 * 60_000;
    /// Entries per map at most.
    pub const MAX_ENTRIES: usize = 100_000;

    /// Milliseconds a sign-in for `username` from `ip` must still wait at `now_ms`, if any.
    pub fn wait_ms(&self, username: &str, ip: IpAddr, now_ms: i64) -> Option<i64> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = addr_key(ip);
        let pair = st.pairs.get(&(username.to_ascii_lowercase(), key), now_ms);
        let addr = st.addrs.get(&key, now_ms);
        [(pair, Self::PAIR_FREE), (addr, Self::ADDR_FREE)]
            .into_iter()
            .filter_map(|(f, free)| f.map(|f| f.last_ms + delay_ms(f.count, free) - now_ms))
            .max()
            .filter(|w| *w > 0)
    }

    /// Counts a failed sign-in for `username` from `ip`.
    pub fn failed(&self, username: &str, ip: IpAddr, now_ms: i64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = addr_key(ip);
        st.pairs.add((username.to_ascii_lowercase(), key), now_ms);
        st.addrs.add(key, now_ms);
    }

    /// Clears the failures of `username` from `ip` after a successful sign-in.
    pub fn succeeded(&self, username: &str, ip: IpAddr) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.pairs
            .remove(&(username.to_ascii_lowercase(), addr_key(ip)));
    }
}

/// The delay after `count` failures when `free` are allowed without one.
fn delay_ms(count: u32, free: u32) -> i64 {
    if count < free {
        return 0;
    }
    let doublings = (count - free).min(20);
    (LoginLimiter::FIRST_DELAY_MS << doublings).min(LoginLimiter::MAX_DELAY_MS)
}

/// One address group's bucket: what is left, in 1/60000 of a request (so refilling by
/// `per_minute` units a millisecond stays in integers), and when it was counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: i64,
    at_ms: i64,
}

/// What one request costs, in bucket units.
const REQUEST_UNITS: i64 = 60_000;

/// A token bucket per address group: `per_minute` requests at once, refilled at `per_minute`
/// a minute. Buckets that are full again are dropped when the map is large.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// Buckets kept at most.
    pub const MAX_ENTRIES: usize = 100_000;

    /// `per_minute` requests per address group and minute (at least 1).
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `ip` at `now_ms`; `Err(ms)` says how long until one is allowed.
    pub fn take(&self, ip: IpAddr, now_ms: i64) -> Result<(), i64> {
        let per_ms = i64::from(self.per_minute);
        let capacity = per_ms * REQUEST_UNITS;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = addr_key(ip);
        if !map.contains_key(&key) && map.len() >= Self::MAX_ENTRIES {
            // A bucket idle for a minute is full: forgetting it changes nothing.
            map.retain(|_, b| now_ms - b.at_ms < 60_000);
            if map.len() >= Self::MAX_ENTRIES {
                return Err(1_000);
            }
        }
        let b = map.entry(key).or_insert(Bucket {
            units: capacity,
            at_ms: now_ms,
        });
        let elapsed = (now_ms - b.at_ms).clamp(0, 60_000);
        b.units = (b.units + elapsed * per_ms).min(capacity);
        b.at_ms = now_ms;
        if b.units >= REQUEST_UNITS {
            b.units -= REQUEST_UNITS;
            Ok(())
        } else {
            Err((REQUEST_UNITS - b.units + per_ms - 1) / per_ms)
        }
    }
}

/// A slot for one password hash or verification; the work must keep it until it is done.
#[derive(Debug)]
pub struct HashSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// The slots for password hashing: a fixed number of argon2id computations at once (by
/// default one per core); a request finding them all taken gets 429 `rate_limited` at once
/// rather than queueing (a queue of hashes would hold their memory and the blocking pool).
#[derive(Debug)]
pub struct PasswordGate {
    slots: Arc<Semaphore>,
    size: usize,
}

impl PasswordGate {
    /// `size` slots; 0 means one per core.
    pub fn new(size: usize) -> Self {
        let size = if size == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            size
        };
        PasswordGate {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many slots there are.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many slots are free now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// A free slot, if any (kept until dropped). Tests use it to fill the gate.
    pub fn try_hold(&self) -> Option<HashSlot> {
        Arc::clone(&self.slots)
            .try_acquire_owned()
            .ok()
            .map(HashSlot)
    }

    /// A free slot, or 429 `rate_limited` with `Retry-After: 1`.
    pub fn slot(&self) -> Result<HashSlot, ApiError> {
        self.try_hold().ok_or_else(|| {
            ApiError::rate_limited(
                1,
                "the server is busy checking other passwords; retry in 1 s",
            )
        })
    }
}

/// Whole seconds to announce in `Retry-After` for a wait in milliseconds (rounded up, ≥ 1).
pub fn retry_after_s(wait_ms: i64) -> u64 {
    u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_grouped() {
        assert_eq!(addr_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(addr_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(addr_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(
            addr_key(ip("2001:db8:1:2:ffff::1")),
            addr_key(ip("2001:db8:1:2::9"))
        );
    }

    #[test]
    fn a_failing_address_waits_longer_each_time_and_others_do_not_wait() {
        let l = LoginLimiter::default();
        let (attacker, owner) = (ip("198.51.100.9"), ip("203.0.113.5"));
        let mut now = 1_000_000;
        for _ in 0..LoginLimiter::PAIR_FREE - 1 {
            l.failed("Admin", attacker, now);
            assert_eq!(l.wait_ms("admin", attacker, now), None);
            now += 10;
        }
        l.failed("admin", attacker, now);
        assert_eq!(
            l.wait_ms("ADMIN", attacker, now),
            Some(LoginLimiter::FIRST_DELAY_MS)
        );
        assert_eq!(l.wait_ms("admin", owner, now), None, "another address");
        assert_eq!(l.wait_ms("other", attacker, now), None, "another name");
        // After the wait the next failure doubles it; the cap holds.
        now += LoginLimiter::FIRST_DELAY_MS;
        assert_eq!(l.wait_ms("admin", attacker, now), None);
        l.failed("admin", attacker, now);
        assert_eq!(
            l.wait_ms("admin", attacker, now + 1_000),
            Some(2 * LoginLimiter::FIRST_DELAY_MS - 1_000)
        );
        for _ in 0..20 {
            l.failed("admin", attacker, now);
        }
        assert_eq!(
            l.wait_ms("admin", attacker, now),
            Some(LoginLimiter::MAX_DELAY_MS)
        );
        // Forgotten after a quiet while; a success clears the pair at once.
        assert_eq!(
            l.wait_ms("admin", attacker, now + LoginLimiter::FORGET_MS),
            None
        );
        // A success clears the pair, not the address's own count (26 failures by now).
        l.succeeded("admin", attacker);
        assert_eq!(
            l.wait_ms("admin", attacker, now),
            Some(LoginLimiter::MAX_DELAY_MS)
        );
        let fresh = LoginLimiter::default();
        for _ in 0..LoginLimiter::PAIR_FREE {
            fresh.failed("admin", attacker, now);
        }
        assert!(fresh.wait_ms("admin", attacker, now).is_some());
        fresh.succeeded("admin", attacker);
        assert_eq!(fresh.wait_ms("admin", attacker, now), None);
    }

    #[test]
    fn an_address_spraying_many_names_is_slowed_for_every_name() {
        let l = LoginLimiter::default();
        let sprayer = ip("2001:db8::1");
        let now = 5_000_000;
        for i in 0..LoginLimiter::ADDR_FREE {
            assert_eq!(l.wait_ms(&format!("user{i}"), sprayer, now), None);
            l.failed(&format!("user{i}"), sprayer, now);
        }
        // The same /64 is the same party.
        let neighbour = ip("2001:db8::ffff");
        assert_eq!(
            l.wait_ms("fresh-name", neighbour, now),
            Some(LoginLimiter::FIRST_DELAY_MS)
        );
        assert_eq!(l.wait_ms("fresh-name", ip("2001:db9::1"), now), None);
    }

    #[test]
    fn maps_stay_bounded() {
        let mut m = FailureMap::default();
        for i in 0..LoginLimiter::MAX_ENTRIES + 10 {
            m.add(i, i as i64);
        }
        assert_eq!(m.map.len(), LoginLimiter::MAX_ENTRIES);
        assert!(m.get(&0, 0).is_none(), "the oldest went first");
        assert!(m.get(&(LoginLimiter::MAX_ENTRIES + 9), 0).is_some());
    }

    #[test]
    fn the_gate_hands_out_its_slots_and_takes_them_back() {
        let gate = PasswordGate::new(2);
        assert_eq!((gate.size(), gate.available()), (2, 2));
        let a = gate.slot().unwrap();
        let _b = gate.try_hold().unwrap();
        let e = gate.slot().unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (429, "rate_limited"));
        assert_eq!(e.retry_after_s, Some(1));
        drop(a);
        assert!(gate.slot().is_ok());
        assert!(PasswordGate::new(0).size() >= 1);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refills_per_address() {
        let l = RateLimiter::new(3);
        let (a, b) = (ip("198.51.100.1"), ip("198.51.100.2"));
        let now = 10_000;
        for _ in 0..3 {
            assert_eq!(l.take(a, now), Ok(()));
        }
        assert_eq!(l.take(a, now), Err(20_000), "one token every 20 s");
        assert_eq!(l.take(b, now), Ok(()), "another address has its own bucket");
        assert_eq!(l.take(a, now + 19_000), Err(1_000));
        assert_eq!(l.take(a, now + 20_000), Ok(()));
        assert!(l.take(a, now + 20_000).is_err());
        // Never more than the burst, however long it waited.
        for _ in 0..3 {
            assert_eq!(l.take(a, now + 3_600_000), Ok(()));
        }
        assert!(l.take(a, now + 3_600_000).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_s(1), 1);
        assert_eq!(retry_after_s(1000), 1);
        assert_eq!(retry_after_s(1001), 2);
        assert_eq!(retry_after_s(-5), 1);
    }
}
