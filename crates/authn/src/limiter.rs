//! The per-address brute-force limiter.
//!
//! Each client address may fail authentication `count` times within any sliding window of
//! `per`; the failure that reaches the budget locks the address out for `per`, during which every request from it
//! gets 429 with `Retry-After`, valid credential or not. Successes change nothing (an attacker
//! holding one valid key cannot reset the count). IPv6 addresses count per /64 (one host
//! usually owns the whole prefix); IPv4-mapped IPv6 counts as its IPv4 address.
//!
//! Memory is bounded: at most `capacity` addresses are tracked; when full, entries whose window
//! and lockout are over are dropped first, then the oldest half.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portcullis_config::Rate;

use crate::lock;

/// Addresses tracked at most.
pub const DEFAULT_CAPACITY: usize = 16_384;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Times of the counted failures within the last `per` (at most `count`).
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Entry {
    fn last_activity(&self) -> Option<Instant> {
        self.blocked_until.or(self.failures.back().copied())
    }
}

#[derive(Debug)]
pub struct FailureLimiter {
    rate: Rate,
    capacity: usize,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl FailureLimiter {
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `ip` is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = bucket(ip);
        match lock(&self.entries).get(&key).and_then(|e| e.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failure from `ip`; returns the lockout if this failure started one.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = bucket(ip);
        let per = self.rate.per;
        let mut entries = lock(&self.entries);
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            evict(&mut entries, now, per, self.capacity);
        }
        let entry = entries.entry(key).or_default();
        match entry.blocked_until {
            Some(until) if until > now => return None,
            Some(_) => entry.blocked_until = None,
            None => {}
        }
        while entry
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= per)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        if entry.failures.len() >= self.rate.count as usize {
            entry.failures.clear();
            entry.blocked_until = Some(now + per);
            return Some(per);
        }
        None
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// The key an address counts under.
fn bucket(ip: IpAddr) -> IpAddr {
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

fn evict(entries: &mut HashMap<IpAddr, Entry>, now: Instant, per: Duration, capacity: usize) {
    entries.retain(|_, e| {
        e.blocked_until.is_some_and(|u| u > now)
            || e.failures
                .back()
                .is_some_and(|t| now.duration_since(*t) < per)
    });
    if entries.len() >= capacity {
        let mut by_age: Vec<(IpAddr, Option<Instant>)> = entries
            .iter()
            .map(|(ip, e)| (*ip, e.last_activity()))
            .collect();
        by_age.sort_by_key(|(_, at)| *at);
        let drop = entries.len().div_ceil(2).max(1);
        for (ip, _) in by_age.iter().take(drop) {
            entries.remove(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    fn limiter(count: u32, secs: u64, capacity: usize) -> FailureLimiter {
        FailureLimiter::new(
            Rate {
                count,
                per: Duration::from_secs(secs),
            },
            capacity,
        )
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn locks_out_after_budget_until_window_passes() {
        let l = limiter(3, 60, 100);
        let t0 = Instant::now();
        assert_eq!(l.record_failure(A, t0), None);
        assert_eq!(l.record_failure(A, t0), None);
        assert!(l.check(A, t0).is_ok());
        assert_eq!(l.record_failure(A, t0), Some(Duration::from_secs(60)));
        assert_eq!(
            l.check(A, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(l.check(B, t0).is_ok(), "another address is unaffected");
        assert!(l.check(A, t0 + Duration::from_secs(60)).is_ok());
        // After the lockout a fresh budget starts.
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(l.record_failure(A, t1), None);
        assert!(l.check(A, t1).is_ok());
    }

    #[test]
    fn window_slides() {
        let l = limiter(2, 10, 100);
        let t0 = Instant::now();
        assert_eq!(l.record_failure(A, t0), None);
        assert_eq!(l.record_failure(A, t0 + Duration::from_secs(10)), None);
        assert!(l.check(A, t0 + Duration::from_secs(10)).is_ok());
        // t=10 and t=19 are within 10 s of each other.
        let t = t0 + Duration::from_secs(19);
        assert_eq!(l.record_failure(A, t), Some(Duration::from_secs(10)));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = limiter(2, 60, 100);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        l.record_failure(a, t0);
        l.record_failure(b, t0);
        assert!(l.check("2001:db8:1:2:3::9".parse().unwrap(), t0).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        l.record_failure(mapped, t0);
        l.record_failure(A, t0);
        assert!(l.check(A, t0).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter(5, 60, 64);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            l.record_failure(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert!(l.tracked() <= 64);
    }

    proptest! {
        /// Under any schedule of failures from one address, no window of length `per` ever
        /// holds more than `count` counted failures, and the address is locked out right
        /// after the failure that used up the budget.
        #[test]
        fn never_more_than_budget(count in 1u32..6, gaps in proptest::collection::vec(0u64..30, 1..60)) {
            let per = Duration::from_secs(20);
            let l = FailureLimiter::new(Rate { count, per }, 16);
            let t0 = Instant::now();
            let mut now = t0;
            let mut counted: Vec<Instant> = Vec::new();
            for gap in gaps {
                now += Duration::from_secs(gap);
                if l.check(A, now).is_err() {
                    continue; // refused before any credential is checked: not counted
                }
                let lockout = l.record_failure(A, now);
                counted.push(now);
                let in_window = counted.iter().filter(|t| now.duration_since(**t) < per).count();
                prop_assert!(in_window <= count as usize);
                if lockout.is_some() {
                    prop_assert!(l.check(A, now).is_err());
                }
            }
        }
    }
}
