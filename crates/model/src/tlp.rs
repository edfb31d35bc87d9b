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

    /// Its place from CLEAR (0) to RED (4), as the store keeps it.
    pub fn code(self) -> u8 {
        self as u8
    }

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

    /// The id of this label's TLP 2.0 marking definition in STIX 2.1.
    pub fn stix_marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The label a STIX marking definition id stands for: the TLP 2.0 ids and the TLP 1.0 ids
    /// built into STIX 2.1 (WHITE read as CLEAR).
    pub fn from_stix_marking(id: &str) -> Option<Tlp> {
        if let Some(t) = Tlp::ALL.into_iter().find(|t| t.stix_marking_id() == id) {
            return Some(t);
        }
        match id {
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9" => Some(Tlp::Clear),
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da" => Some(Tlp::Green),
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" => Some(Tlp::Amber),
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Some(Tlp::Red),
            _ => None,
        }
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
    fn stix_marking_ids() {
        for tlp in Tlp::ALL {
            assert_eq!(Tlp::from_stix_marking(tlp.stix_marking_id()), Some(tlp));
        }
        assert_eq!(
            Tlp::from_stix_marking("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"),
            Some(Tlp::Clear)
        );
        assert_eq!(Tlp::from_stix_marking("marking-definition--00000000-0000-0000-0000-000000000000"), None);
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
