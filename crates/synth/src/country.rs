//! A synthetic country and its neighbours, day by day: infected hosts that appear, stay for a
//! while and are cleaned, seen at sinkholes more on weekdays than at weekends; an intervention
//! after which the national rate falls; and a botnet outbreak. Addresses come from the real
//! ranges of `data/ipdata-sample` (Portugal by AS, the other countries by range), and the
//! same seed gives the same days.

use std::net::Ipv4Addr;

use crate::{FAMILIES, Networks, Rng};

/// Country ranges of the sample data: `first,last,cc`.
const COUNTRY_RANGES: &str = include_str!("../../../data/ipdata-sample/country-ipv4.csv");

/// A country of the simulation: its internet users (rounded public figures, for the demo)
/// and its infected hosts per 1,000 users on an ordinary day.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub cc: &'static str,
    pub users: f64,
    pub rate: f64,
}

/// Portugal first: the national country; the others make "the world in the data".
pub const COUNTRIES: [Spec; 6] = [
    Spec { cc: "PT", users: 8_900_000.0, rate: 0.22 },
    Spec { cc: "ES", users: 44_500_000.0, rate: 0.03 },
    Spec { cc: "FR", users: 58_000_000.0, rate: 0.025 },
    Spec { cc: "NL", users: 17_200_000.0, rate: 0.03 },
    Spec { cc: "BE", users: 10_900_000.0, rate: 0.04 },
    Spec { cc: "LU", users: 640_000.0, rate: 0.03 },
];

/// The IoT botnet of the outbreak.
pub const OUTBREAK_FAMILY: &str = "mozi";

/// The shape of the simulated period.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub days: u32,
    /// Day index of the national clean-up campaign: Portugal's rate halves over two weeks.
    pub intervention: u32,
    /// Day index and length of the outbreak in Portugal and Spain.
    pub outbreak: u32,
    pub outbreak_days: u32,
}

impl Plan {
    /// `days` days (180 in the demo): the intervention at five ninths of them, the outbreak
    /// at three quarters, for a ninth.
    pub fn over(days: u32) -> Plan {
        Plan { days, intervention: days * 5 / 9, outbreak: days * 3 / 4, outbreak_days: (days / 9).max(3) }
    }
}

/// One infected host seen at a sinkhole on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub ip: Ipv4Addr,
    pub cc: &'static str,
    pub asn: Option<u32>,
    pub family: &'static str,
    /// Seconds into the day of its first connection.
    pub second: u32,
    /// Connections that day.
    pub encounters: u32,
}

#[derive(Debug, Clone)]
struct Host {
    ip: u32,
    asn: Option<u32>,
    family: &'static str,
    until: u32,
}

#[derive(Debug, Clone)]
struct Ranges {
    ranges: Vec<(u32, u32, Option<u32>)>,
    cumulative: Vec<u64>,
}

impl Ranges {
    fn new(ranges: Vec<(u32, u32, Option<u32>)>) -> Ranges {
        let mut total = 0u64;
        let cumulative = ranges
            .iter()
            .map(|(a, b, _)| {
                total += u64::from(b - a) + 1;
                total
            })
            .collect();
        Ranges { ranges, cumulative }
    }

    fn address(&self, rng: &mut Rng) -> (u32, Option<u32>) {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let at = rng.below(total);
        let i = self.cumulative.partition_point(|&c| c <= at).min(self.ranges.len() - 1);
        let (a, b, asn) = self.ranges[i];
        (a + rng.below(u64::from(b - a) + 1) as u32, asn)
    }
}

#[derive(Debug, Clone)]
struct Country {
    spec: Spec,
    ranges: Ranges,
    active: Vec<Host>,
}

/// The simulation; call [`Simulation::day`] for each day in order.
#[derive(Debug, Clone)]
pub struct Simulation {
    rng: Rng,
    plan: Plan,
    countries: Vec<Country>,
    /// Networks where infections cluster (the constituents' own prefixes), with the share of
    /// national infections that land in them.
    hot: Option<(Ranges, f64)>,
}

/// Mean days a host stays infected.
const MEAN_DAYS: f64 = 25.0;

impl Simulation {
    /// `hot`: prefixes (first, last, AS) of the constituency where `share` of Portugal's
    /// infections land, so that its organizations have infections of their own.
    pub fn new(seed: u64, plan: Plan, hot: Vec<(u32, u32, Option<u32>)>, share: f64) -> Simulation {
        let pt = Networks::portugal();
        let countries = COUNTRIES
            .iter()
            .map(|spec| {
                let ranges = if spec.cc == "PT" {
                    pt.all().iter().map(|n| (n.first, n.last, Some(n.asn))).collect()
                } else {
                    COUNTRY_RANGES
                        .lines()
                        .filter_map(|l| {
                            let mut p = l.split(',');
                            let a: Ipv4Addr = p.next()?.parse().ok()?;
                            let b: Ipv4Addr = p.next()?.parse().ok()?;
                            (p.next()? == spec.cc).then_some((u32::from(a), u32::from(b), None))
                        })
                        .collect()
                };
                Country { spec: *spec, ranges: Ranges::new(ranges), active: Vec::new() }
            })
            .collect();
        let hot = (!hot.is_empty()).then(|| (Ranges::new(hot), share));
        Simulation { rng: Rng::new(seed), plan, countries, hot }
    }

    /// Portugal's rate on day `d`: halving over the two weeks after the intervention.
    fn factor(&self, cc: &str, d: u32) -> f64 {
        if cc != "PT" || d < self.plan.intervention {
            return 1.0;
        }
        let into = f64::from(d - self.plan.intervention).min(14.0) / 14.0;
        1.0 - 0.5 * into
    }

    /// Outbreak hosts wanted on day `d`, as a share of the country's ordinary level: up for a
    /// week, then down.
    fn outbreak(&self, cc: &str, d: u32) -> f64 {
        let (start, len) = (self.plan.outbreak, self.plan.outbreak_days);
        if !matches!(cc, "PT" | "ES") || d < start || d >= start + len {
            return 0.0;
        }
        let t = f64::from(d - start);
        let peak = f64::from(len) / 3.0;
        let shape = if t < peak { t / peak } else { (f64::from(len) - t) / (f64::from(len) - peak) };
        0.45 * shape.max(0.0)
    }

    /// Everything the sinkholes see on day `d` (0-based), whose weekday is `weekday` (0 Monday).
    pub fn day(&mut self, d: u32, weekday: u32) -> Vec<Sighting> {
        let mut out = Vec::new();
        for c in 0..self.countries.len() {
            let spec = self.countries[c].spec;
            let level = spec.users / 1000.0 * spec.rate;
            let noise = 0.97 + 0.06 * (self.rng.below(1000) as f64 / 1000.0);
            let ordinary = (level * self.factor(spec.cc, d) * noise) as usize;
            let outbreak = (level * self.outbreak(spec.cc, d)) as usize;
            let rng = &mut self.rng;
            let country = &mut self.countries[c];
            country.active.retain(|h| h.until >= d);
            let (mut normal, mut iot) = country
                .active
                .iter()
                .fold((0, 0), |(n, o), h| if h.family == OUTBREAK_FAMILY { (n, o + 1) } else { (n + 1, o) });
            while normal < ordinary || iot < outbreak {
                let is_iot = iot < outbreak;
                let (ip, asn) = match &self.hot {
                    Some((hot, share)) if spec.cc == "PT" && (rng.below(1000) as f64) < share * 1000.0 => {
                        hot.address(rng)
                    }
                    _ => country.ranges.address(rng),
                };
                let family = if is_iot {
                    OUTBREAK_FAMILY
                } else {
                    // The first families are the most common: the square root of a uniform draw
                    // leans towards the end, counted from the front here.
                    let n = FAMILIES.len() as u64;
                    let back = ((rng.below(n * n) as f64).sqrt() as usize).min(FAMILIES.len() - 1);
                    FAMILIES[FAMILIES.len() - 1 - back]
                };
                let stay = (-(1.0 - rng.below(1_000_000) as f64 / 1_000_000.0).ln() * MEAN_DAYS).ceil() as u32;
                let stay = if is_iot { stay.min(self.plan.outbreak + self.plan.outbreak_days - d) } else { stay };
                country.active.push(Host { ip, asn, family, until: d + stay.max(1) });
                if is_iot {
                    iot += 1;
                } else {
                    normal += 1;
                }
            }
            // Offices and their machines are off at weekends.
            let seen = if weekday >= 5 { 620 } else { 800 };
            for h in &country.active {
                if rng.below(1000) < seen {
                    out.push(Sighting {
                        ip: Ipv4Addr::from(h.ip),
                        cc: spec.cc,
                        asn: h.asn,
                        family: h.family,
                        second: rng.below(86_400) as u32,
                        encounters: 1 + rng.below(30) as u32,
                    });
                }
            }
        }
        out.sort_by_key(|s| s.second);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_falls_after_the_intervention_and_the_outbreak_comes_and_goes() {
        let plan = Plan { days: 60, intervention: 30, outbreak: 40, outbreak_days: 12 };
        let mut sim = Simulation::new(7, plan, Vec::new(), 0.0);
        let mut pt = Vec::new();
        let mut mozi = Vec::new();
        for d in 0..plan.days {
            let day = sim.day(d, d % 7);
            pt.push(day.iter().filter(|s| s.cc == "PT").count());
            mozi.push(day.iter().filter(|s| s.family == OUTBREAK_FAMILY).count());
            assert!(day.iter().all(|s| s.cc != "PT" || s.asn.is_some()));
        }
        let mean = |s: &[usize]| s.iter().sum::<usize>() as f64 / s.len() as f64;
        assert!(mean(&pt[50..]) < 0.7 * mean(&pt[20..30]), "{pt:?}");
        assert_eq!(mozi[39], 0);
        assert!(mozi[44] > 50, "{mozi:?}");
        assert_eq!(mozi[55], 0, "{mozi:?}");
        let again: Vec<Sighting> = Simulation::new(7, plan, Vec::new(), 0.0).day(0, 0);
        assert_eq!(again, Simulation::new(7, plan, Vec::new(), 0.0).day(0, 0));
    }
}
