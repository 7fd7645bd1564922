//! Hybrid logical clock: timestamps that order changes across laptops whose clocks disagree.
//! Encoded as a fixed-width string so that byte order is causal order.

use std::fmt;

/// A hybrid logical clock value: wall-clock milliseconds, a counter for events within the
/// same millisecond (or while the wall clock lags), and the node that produced it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hlc {
    pub wall_ms: i64,
    pub counter: u32,
    pub node: String,
}

impl Hlc {
    pub fn zero(node: &str) -> Hlc {
        Hlc {
            wall_ms: 0,
            counter: 0,
            node: node.to_string(),
        }
    }

    /// The next timestamp for a local event at physical time `now_ms`. Never goes
    /// backwards, even when the laptop's clock is set back.
    pub fn tick(&self, now_ms: i64) -> Hlc {
        if now_ms > self.wall_ms {
            Hlc {
                wall_ms: now_ms,
                counter: 0,
                node: self.node.clone(),
            }
        } else {
            Hlc {
                wall_ms: self.wall_ms,
                counter: self.counter + 1,
                node: self.node.clone(),
            }
        }
    }

    /// The next timestamp after receiving `remote`: greater than both.
    pub fn observe(&self, remote: &Hlc, now_ms: i64) -> Hlc {
        let wall = now_ms.max(self.wall_ms).max(remote.wall_ms);
        let counter = if wall == self.wall_ms && wall == remote.wall_ms {
            self.counter.max(remote.counter) + 1
        } else if wall == self.wall_ms {
            self.counter + 1
        } else if wall == remote.wall_ms {
            remote.counter + 1
        } else {
            0
        };
        Hlc {
            wall_ms: wall,
            counter,
            node: self.node.clone(),
        }
    }

    pub fn parse(s: &str) -> Option<Hlc> {
        let mut parts = s.splitn(3, '-');
        let wall_ms = parts.next()?.parse().ok()?;
        let counter = u32::from_str_radix(parts.next()?, 16).ok()?;
        let node = parts.next()?.to_string();
        Some(Hlc {
            wall_ms,
            counter,
            node,
        })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}-{:08x}-{}", self.wall_ms, self.counter, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_monotonic_when_clock_goes_back() {
        let a = Hlc::zero("n1").tick(1_000);
        let b = a.tick(500);
        let c = b.tick(500);
        assert!(a < b && b < c);
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        assert_eq!(Hlc::parse(&c.to_string()), Some(c));
    }

    #[test]
    fn observe_moves_past_remote() {
        let local = Hlc::zero("a").tick(1_000);
        let remote = Hlc {
            wall_ms: 5_000,
            counter: 7,
            node: "b".into(),
        };
        let next = local.observe(&remote, 2_000);
        assert_eq!((next.wall_ms, next.counter), (5_000, 8));
        assert!(next.to_string() > remote.to_string());
    }

    #[test]
    fn string_order_is_clock_order_across_digit_counts() {
        let small = Hlc {
            wall_ms: 999,
            counter: 15,
            node: "z".into(),
        };
        let big = Hlc {
            wall_ms: 1000,
            counter: 0,
            node: "a".into(),
        };
        assert!(small.to_string() < big.to_string());
    }
}
