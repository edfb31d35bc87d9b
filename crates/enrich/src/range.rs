//! Longest-prefix match over address ranges: the structure behind every IP lookup.
//!
//! Ranges (CIDR prefixes, or arbitrary first–last ranges as some IP data has them) may nest and
//! overlap; the most specific one wins, that is the smallest, and between ranges of the same
//! size the one added last. Building flattens them once into disjoint segments sorted by their
//! first address; a table indexed by the top bits of the address narrows each lookup to one or
//! two segments. About 8 bytes per segment for IPv4, plus 4 per bucket.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

/// An address as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub trait Key: Copy + Ord + std::fmt::Debug + Send + Sync + Into<u128> + 'static {
    const BITS: u32;
    const MAX: Self;
    /// The top `bits` bits: which bucket of the index the address falls into.
    fn top(self, bits: u32) -> usize;
    fn next(self) -> Option<Self>;
    /// `end - start`, saturated: ranges are compared by size.
    fn span(start: Self, end: Self) -> u128;
}

impl Key for u32 {
    const BITS: u32 = 32;
    const MAX: u32 = u32::MAX;
    fn top(self, bits: u32) -> usize {
        (self >> (32 - bits)) as usize
    }
    fn next(self) -> Option<u32> {
        self.checked_add(1)
    }
    fn span(start: u32, end: u32) -> u128 {
        u128::from(end - start)
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    const MAX: u128 = u128::MAX;
    fn top(self, bits: u32) -> usize {
        (self >> (128 - bits)) as usize
    }
    fn next(self) -> Option<u128> {
        self.checked_add(1)
    }
    fn span(start: u128, end: u128) -> u128 {
        end - start
    }
}

/// Disjoint segments, each the winning range from its first address up to the next segment's.
#[derive(Debug, Clone)]
pub struct RangeMap<K: Key, V> {
    segments: Vec<Segment<K, V>>,
    ranges: Vec<(K, K, V)>,
    /// `index[b]` is the first segment that starts in bucket `b` or later; there are about as
    /// many buckets as segments (up to 2^20), so that a lookup searches one or two.
    index: Vec<u32>,
    bits: u32,
}

/// A segment carries what a lookup needs, so that most lookups read nothing else: the
/// winner's value, and its prefix length when the winner is a CIDR block.
#[derive(Debug, Clone, Copy)]
struct Segment<K, V> {
    start: K,
    /// The index of the winning range in `ranges`, `GAP` for none.
    winner: u32,
    prefix: Option<u8>,
    value: V,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<V> {
    pub value: V,
    /// The winning range's prefix length, when it is a CIDR block.
    pub prefix: Option<u8>,
    winner: u32,
}

impl<K: Key, V: Copy + Default> Default for RangeMap<K, V> {
    fn default() -> Self {
        RangeMap::build([])
    }
}

const GAP: u32 = u32::MAX;

/// The prefix length of `first..=last` if it is one CIDR block.
fn prefix_len<K: Key>(first: K, last: K) -> Option<u8> {
    let (first, last) = (first.into(), last.into());
    let span = last - first;
    (span & span.wrapping_add(1) == 0 && first & span == 0).then(|| (K::BITS - span.count_ones()) as u8)
}

impl<K: Key, V: Copy + Default> RangeMap<K, V> {
    /// Flattens `ranges` (`first`, `last` inclusive, value); a range whose `last` is before
    /// its `first` is ignored.
    pub fn build(ranges: impl IntoIterator<Item = (K, K, V)>) -> RangeMap<K, V> {
        let ranges: Vec<(K, K, V)> = ranges.into_iter().filter(|(s, e, _)| s <= e).collect();
        assert!(ranges.len() < GAP as usize, "too many ranges for one map");
        let mut order: Vec<u32> = (0..ranges.len() as u32).collect();
        order.sort_by_key(|&i| ranges[i as usize].0);

        // A sweep from low to high addresses. `open` holds the ranges that cover the current
        // point, the winner on top: smallest first, then the one added last.
        let mut segments: Vec<Segment<K, V>> = Vec::new();
        let mut push = |start: K, winner: u32| {
            if segments.last().map(|s| s.winner) != Some(winner) {
                let (prefix, value) = match ranges.get(winner as usize) {
                    Some(&(first, last, value)) => (prefix_len(first, last), value),
                    None => (None, V::default()),
                };
                segments.push(Segment { start, winner, prefix, value });
            }
        };
        let mut open: BinaryHeap<(Reverse<u128>, u32)> = BinaryHeap::new();
        let mut next = order.iter().peekable();
        // The point the sweep is at; `None` once past the top of the address space.
        let mut at = ranges.get(*order.first().unwrap_or(&0) as usize).map(|r| r.0);
        while let Some(point) = at {
            while let Some(&&i) = next.peek() {
                if ranges[i as usize].0 > point {
                    break;
                }
                open.push((Reverse(K::span(ranges[i as usize].0, ranges[i as usize].1)), i));
                next.next();
            }
            while open.peek().is_some_and(|&(_, i)| ranges[i as usize].1 < point) {
                open.pop();
            }
            let Some(&(_, winner)) = open.peek() else {
                // A gap up to the next range.
                push(point, GAP);
                at = next.peek().map(|&&i| ranges[i as usize].0);
                continue;
            };
            push(point, winner);
            // The winner holds until it ends or a new range starts, whichever comes first.
            let end = ranges[winner as usize].1;
            let upcoming = next.peek().map(|&&i| ranges[i as usize].0);
            at = match upcoming {
                Some(s) if s <= end => Some(s),
                _ => end.next(),
            };
            // Ranges that ended before the new point leave at the next turn; ranges nested in
            // the winner that ended earlier were already popped, so the top is still right.
        }
        let bits = (usize::BITS - segments.len().leading_zeros()).clamp(4, 20);
        let mut index = vec![0u32; (1 << bits) + 1];
        let mut s = 0usize;
        for (b, slot) in index.iter_mut().enumerate() {
            while s < segments.len() && segments[s].start.top(bits) < b {
                s += 1;
            }
            *slot = s as u32;
        }
        segments.shrink_to_fit();
        RangeMap { segments, ranges, index, bits }
    }

    /// The most specific range that contains `key`.
    #[inline]
    pub fn get(&self, key: K) -> Option<Found<V>> {
        let b = key.top(self.bits);
        // Segments that start in this bucket, and the one before them, which may reach in. A
        // segment's winner covers all of it: the sweep starts a new segment where it ends.
        let lo = (self.index[b] as usize).saturating_sub(1);
        let hi = self.index[b + 1] as usize;
        let segments = &self.segments[lo..hi];
        let n = segments.partition_point(|s| s.start <= key);
        let s = segments.get(n.checked_sub(1)?)?;
        (s.winner != GAP).then_some(Found { value: s.value, prefix: s.prefix, winner: s.winner })
    }

    /// The first and last address of the range that a lookup found.
    pub fn range_of(&self, found: &Found<V>) -> (K, K) {
        let (first, last, _) = self.ranges[found.winner as usize];
        (first, last)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many ranges were given.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Bytes held, for the benchmarks' memory per prefix.
    pub fn heap_bytes(&self) -> usize {
        self.segments.capacity() * size_of::<Segment<K, V>>()
            + self.ranges.capacity() * size_of::<(K, K, V)>()
            + self.index.capacity() * 4
    }

    /// Each value with the number of addresses it wins: every address counted once, for its
    /// most specific range.
    pub fn sizes(&self) -> impl Iterator<Item = (V, u128)> + '_ {
        self.segments.iter().enumerate().filter(|(_, s)| s.winner != GAP).map(|(i, s)| {
            let last: u128 = self.segments.get(i + 1).map_or(K::MAX.into(), |n| n.start.into() - 1);
            (s.value, (last - s.start.into()).saturating_add(1))
        })
    }

    /// Every range as given, in the order given.
    pub fn ranges(&self) -> impl Iterator<Item = &(K, K, V)> {
        self.ranges.iter()
    }
}

/// The largest CIDR block that contains `ip` and lies within `first..=last`: the network to
/// report for an address found in a range that is not itself a prefix.
pub fn block_within<K: Key>(ip: K, first: K, last: K) -> u8 {
    let (ip, first, last) = (ip.into(), first.into(), last.into());
    let fits = |len: u32| {
        let host = if len == K::BITS { 0 } else { u128::MAX >> (128 - (K::BITS - len)) };
        let base = ip & !host;
        base >= first && (base | host) <= last
    };
    // A block that fits holds only smaller blocks that fit: search for the shortest length.
    let (mut lo, mut hi) = (0, K::BITS);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) { hi = mid } else { lo = mid + 1 }
    }
    lo as u8
}

/// An address as the maps key it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    V4(u32),
    V6(u128),
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Addr::V4(u32::from(v4)),
                None => Addr::V6(u128::from(v6)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    fn net(s: &str) -> (u32, u32) {
        let n: ipnet::Ipv4Net = s.parse().unwrap();
        (u32::from(n.network()), u32::from(n.broadcast()))
    }

    #[test]
    fn the_most_specific_prefix_wins() {
        let (a, b) = net("10.0.0.0/8");
        let (c, d) = net("10.1.0.0/16");
        let (e, f) = net("10.1.2.0/24");
        let map = RangeMap::build([(a, b, "eight"), (e, f, "twenty-four"), (c, d, "sixteen")]);
        assert_eq!(map.get(ip("10.1.2.3")).map(|r| r.value), Some("twenty-four"));
        assert_eq!(map.get(ip("10.1.3.3")).map(|r| (r.value, r.prefix)), Some(("sixteen", Some(16))));
        assert_eq!(map.get(ip("10.200.0.1")).map(|r| r.value), Some("eight"));
        assert_eq!(map.get(ip("10.1.2.0")).map(|r| map.range_of(&r)), Some((e, f)));
        assert_eq!(map.get(ip("11.0.0.0")), None);
        assert_eq!(map.get(ip("9.255.255.255")), None);
        assert_eq!(map.get(0), None);
        assert_eq!(map.get(u32::MAX), None);
    }

    #[test]
    fn the_edges_of_the_address_space() {
        let map = RangeMap::build([(0u32, u32::MAX, 1), (u32::MAX, u32::MAX, 2), (0, 0, 3)]);
        assert_eq!(map.get(0).map(|r| (r.value, r.prefix)), Some((3, Some(32))));
        assert_eq!(map.get(1).map(|r| (r.value, r.prefix)), Some((1, Some(0))));
        assert_eq!(map.get(u32::MAX).map(|r| r.value), Some(2));
        assert_eq!(RangeMap::build([(1u32, 2, 0u8)]).get(1).unwrap().prefix, None);
        assert!(RangeMap::<u32, u8>::build([]).get(5).is_none());
    }

    #[test]
    fn blocks_within_ranges() {
        // 10.0.0.0-10.0.2.255 is a /23 and a /24; .1.5 lies in the /23.
        assert_eq!(block_within(ip("10.0.1.5"), ip("10.0.0.0"), ip("10.0.2.255")), 23);
        assert_eq!(block_within(ip("10.0.2.5"), ip("10.0.0.0"), ip("10.0.2.255")), 24);
        assert_eq!(block_within(ip("0.0.0.1"), 0, u32::MAX), 0);
        assert_eq!(block_within(ip("1.2.3.4"), ip("1.2.3.4"), ip("1.2.3.4")), 32);
    }

    /// The obviously correct model: every range that contains the key, smallest first, then
    /// the one added last.
    fn model(ranges: &[(u32, u32, usize)], key: u32) -> Option<usize> {
        ranges
            .iter()
            .filter(|(s, e, _)| *s <= key && key <= *e)
            .min_by_key(|(s, e, v)| (e - s, Reverse(*v)))
            .map(|(_, _, v)| *v)
    }

    proptest! {
        #[test]
        fn the_block_is_the_largest_that_fits(a in any::<u32>(), b in any::<u32>(), k in any::<u32>()) {
            let (first, last) = (a.min(b), a.max(b));
            let ip = first + k % (last - first).saturating_add(1).max(1);
            let len = block_within(ip, first, last);
            let fits = |len: u8| {
                let net = ipnet::Ipv4Net::new(ip.into(), len).unwrap().trunc();
                u32::from(net.network()) >= first && u32::from(net.broadcast()) <= last
            };
            prop_assert!(fits(len));
            prop_assert!(len == 0 || !fits(len - 1));
        }

        #[test]
        fn agrees_with_a_linear_scan(
            raw in proptest::collection::vec((any::<u32>(), 0u32..5000, any::<bool>()), 0..40),
            keys in proptest::collection::vec(any::<u32>(), 0..60),
        ) {
            // Ranges cluster so that they overlap: half are near the first one.
            let base = raw.first().map_or(0, |r| r.0);
            let ranges: Vec<(u32, u32, usize)> = raw
                .iter()
                .enumerate()
                .map(|(i, &(s, len, near))| {
                    let s = if near { base.wrapping_add(s % 20_000) } else { s };
                    (s, s.saturating_add(len), i)
                })
                .collect();
            let map = RangeMap::build(ranges.clone());
            let probes = keys.iter().copied().chain(ranges.iter().flat_map(|r| {
                [r.0, r.1, r.0.wrapping_sub(1), r.1.wrapping_add(1)]
            }));
            for key in probes {
                prop_assert_eq!(map.get(key).map(|r| r.value), model(&ranges, key), "key {}", key);
            }
        }
    }
}
