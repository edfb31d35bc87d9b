//! UTC timestamps with microsecond precision, parsed from the forms feeds use and written as
//! IntelMQ writes them (`2024-06-01T10:12:44+00:00`).

use std::fmt;

/// An instant in UTC, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

const MICROS: i64 = 1_000_000;
/// 0001-01-01 to 9999-12-31: what a four-digit year can express.
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

impl Timestamp {
    pub fn from_micros(micros: i64) -> Option<Timestamp> {
        let ts = Timestamp(micros);
        (MIN_SECS..=MAX_SECS).contains(&ts.secs()).then_some(ts)
    }

    pub fn from_secs(secs: i64) -> Option<Timestamp> {
        secs.checked_mul(MICROS).and_then(Timestamp::from_micros)
    }

    pub fn from_secs_f64(secs: f64) -> Option<Timestamp> {
        let micros = (secs * 1e6).round();
        // The range check rejects NaN and anything outside four-digit years.
        ((MIN_SECS as f64 * 1e6)..=(MAX_SECS as f64 * 1e6)).contains(&micros).then_some(Timestamp(micros as i64))
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(MICROS)
    }

    /// Hours since the epoch: the bucket that the store's indexes are partitioned by.
    pub fn hour(self) -> i64 {
        self.0.div_euclid(3600 * MICROS)
    }

    /// Days since the epoch.
    pub fn day(self) -> i64 {
        self.0.div_euclid(86_400 * MICROS)
    }

    pub fn from_ymd_hms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<Timestamp> {
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s.min(59));
        Timestamp::from_secs(secs)
    }

    /// The calendar fields: year, month, day, hour, minute, second, microsecond.
    pub fn to_parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.secs();
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let micro = self.0.rem_euclid(MICROS) as u32;
        (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, micro)
    }

    pub fn add_secs(self, secs: i64) -> Option<Timestamp> {
        secs.checked_mul(MICROS).and_then(|d| self.0.checked_add(d)).and_then(Timestamp::from_micros)
    }

    /// Parses the ISO 8601 and near-ISO forms feeds send: `2024-06-01T10:12:44Z`,
    /// `2024-06-01 10:12:44`, `2024-06-01 10:12:44 UTC`, `2024-06-01T10:12:44.5+02:00`,
    /// `2024-06-01`. A time without a zone is UTC.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        let b = s.as_bytes();
        let year = digits(b, 0, 4)?;
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let month = digits(b, 5, 2)? as u32;
        let day = digits(b, 8, 2)? as u32;
        if b.len() == 10 {
            return Timestamp::from_ymd_hms(year, month, day, 0, 0, 0);
        }
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
            return None;
        }
        let hour = digits(b, 11, 2)? as u32;
        let minute = digits(b, 14, 2)? as u32;
        let mut i = 16;
        let mut second = 0;
        if b.get(i) == Some(&b':') {
            second = digits(b, 17, 2)? as u32;
            i = 19;
        }
        let mut micros = 0i64;
        if matches!(b.get(i), Some(b'.' | b',')) {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..6 {
                micros *= 10;
            }
        }
        let offset = parse_offset(&s[i..])?;
        let base = Timestamp::from_ymd_hms(year, month, day, hour, minute, second)?;
        base.add_secs(-offset).and_then(|t| Timestamp::from_micros(t.0 + micros))
    }

    /// RFC 3339 with a `Z`, for HTTP APIs and STIX (`2024-06-01T10:12:44Z`, with `.123456` when
    /// there are fractional seconds).
    pub fn to_rfc3339(self) -> String {
        let mut s = self.to_string();
        s.truncate(s.len() - "+00:00".len());
        s.push('Z');
        s
    }
}

/// The zone suffix as an offset in seconds east of UTC; `None` when it is not a zone.
fn parse_offset(rest: &str) -> Option<i64> {
    let rest = rest.trim_start();
    match rest {
        "" | "Z" | "z" | "UTC" | "GMT" | "+00" | "-00" => return Some(0),
        _ => {}
    }
    let b = rest.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = digits(b, 1, 2)?;
    let m = match b.len() {
        3 => 0,
        5 => digits(b, 3, 2)?,
        6 if b[3] == b':' => digits(b, 4, 2)?,
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl fmt::Display for Timestamp {
    /// IntelMQ's form: `2024-06-01T10:12:44+00:00`, with `.123456` when there are microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, us) = self.to_parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        f.write_str("+00:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        let got = Timestamp::parse(input).map(|t| t.to_string());
        assert_eq!(got.as_deref(), expected, "input {input:?}");
    }

    #[test]
    fn parses_feed_forms() {
        check("2024-06-01T10:12:44+00:00", Some("2024-06-01T10:12:44+00:00"));
        check("2024-06-01 10:12:44", Some("2024-06-01T10:12:44+00:00"));
        check("2024-06-01 10:12:44 UTC", Some("2024-06-01T10:12:44+00:00"));
        check("2024-06-01T10:12:44Z", Some("2024-06-01T10:12:44+00:00"));
        check("2024-06-01T10:12:44.5Z", Some("2024-06-01T10:12:44.500000+00:00"));
        check("2024-06-01T10:12:44.1234567Z", Some("2024-06-01T10:12:44.123456+00:00"));
        check("2024-06-01T12:12:44+02:00", Some("2024-06-01T10:12:44+00:00"));
        check("2024-06-01T00:12:44-0130", Some("2024-06-01T01:42:44+00:00"));
        check("2024-06-01T10:12", Some("2024-06-01T10:12:00+00:00"));
        check("2024-06-01", Some("2024-06-01T00:00:00+00:00"));
        check("2024-02-29", Some("2024-02-29T00:00:00+00:00"));
        check("2023-02-29", None);
        check("2024-13-01", None);
        check("2024-06-01T25:00:00", None);
        check("2024-06-01T10:12:44+25:00", None);
        check("2024-06-01T10:12:44 nonsense", None);
        check("2024-06-01T10:12:44.", None);
        check("20240601", None);
        check("", None);
        check("२०२४-06-01", None);
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = Timestamp::parse("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(t.micros(), 0);
        let t = Timestamp::parse("1969-12-31T23:59:59.5Z").unwrap();
        assert_eq!(t.micros(), -500_000);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.500000+00:00");
        assert_eq!(t.to_rfc3339(), "1969-12-31T23:59:59.500000Z");
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(Timestamp::from_secs(i64::MAX).is_none());
        assert!(Timestamp::from_secs_f64(f64::NAN).is_none());
        assert!(Timestamp::from_secs_f64(1e300).is_none());
        assert_eq!(Timestamp::from_secs(MAX_SECS).unwrap().to_string(), "9999-12-31T23:59:59+00:00");
        assert_eq!(Timestamp::parse("0001-01-01").unwrap().secs(), MIN_SECS);
    }
}
