//! The Traffic Light Protocol, version 2.0.

use std::fmt;
use std::str::FromStr;

/// A TLP 2.0 label, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tlp {
    /// Anyone may receive it (TLP 1.0's WHITE).
    Clear,
    /// The recipient's community.
    Green,
    /// The recipient organization and its clients, on a need-to-know basis.
    Amber,
    /// The recipient organization only.
    AmberStrict,
    /// The named recipients only.
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// The colour as IntelMQ writes it in the `tlp` field (`AMBER+STRICT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }

    /// The label as TLP 2.0 spells it (`TLP:AMBER+STRICT`).
    pub fn label(self) -> String {
        format!("TLP:{}", self.as_str())
    }

    /// The more restrictive of two labels: what a combination of data must carry.
    pub fn max(self, other: Tlp) -> Tlp {
        std::cmp::max(self, other)
    }
}

/// A value that is not a TLP label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a TLP label (CLEAR, GREEN, AMBER, AMBER+STRICT or RED), found {0:?}")]
pub struct InvalidTlp(pub String);

impl FromStr for Tlp {
    type Err = InvalidTlp;

    /// Accepts `AMBER`, `amber`, `TLP:AMBER`, `tlp:amber+strict`, `Amber Strict`, and TLP 1.0's
    /// `WHITE` as CLEAR.
    fn from_str(s: &str) -> Result<Tlp, InvalidTlp> {
        let t = s.trim();
        let t = t.get(..4).filter(|p| p.eq_ignore_ascii_case("tlp:")).map_or(t, |_| &t[4..]).trim();
        let upper = t.to_ascii_uppercase().replace([' ', '_', '-'], "+");
        match upper.as_str() {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(InvalidTlp(s.to_owned())),
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        let check = |input: &str, expected: Tlp| assert_eq!(input.parse::<Tlp>(), Ok(expected), "{input}");
        check("WHITE", Tlp::Clear);
        check("tlp:white", Tlp::Clear);
        check("CLEAR", Tlp::Clear);
        check("Green", Tlp::Green);
        check("TLP:AMBER", Tlp::Amber);
        check("amber+strict", Tlp::AmberStrict);
        check("TLP:AMBER+STRICT", Tlp::AmberStrict);
        check("Amber Strict", Tlp::AmberStrict);
        check(" red ", Tlp::Red);
        assert!("YELLOW".parse::<Tlp>().is_err());
        assert!("".parse::<Tlp>().is_err());
        assert!("TLP:".parse::<Tlp>().is_err());
    }

    #[test]
    fn most_restrictive_wins() {
        assert_eq!(Tlp::Green.max(Tlp::AmberStrict), Tlp::AmberStrict);
        assert_eq!(Tlp::Red.max(Tlp::Clear), Tlp::Red);
        for tlp in Tlp::ALL {
            assert_eq!(tlp.as_str().parse::<Tlp>(), Ok(tlp));
            assert_eq!(tlp.label().parse::<Tlp>(), Ok(tlp));
        }
    }
}
