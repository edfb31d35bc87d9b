//! The RSIT classification as IntelMQ 3 uses it: taxonomies, types, their pairing, and the
//! IntelMQ 2.x names that older pipelines still send.

use std::fmt;

macro_rules! taxonomy {
    ($( $tax:ident $tax_name:literal { $( $ty:ident $ty_name:literal ),+ $(,)? } )+) => {
        /// The top level of the classification (`classification.taxonomy`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Taxonomy { $( $tax ),+ }

        /// The classification type (`classification.type`); each belongs to exactly one taxonomy.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ClassificationType { $( $( $ty ),+ ),+ }

        impl Taxonomy {
            /// Every taxonomy, in the RSIT order.
            pub const ALL: &'static [Taxonomy] = &[$( Taxonomy::$tax ),+];

            /// The wire name, e.g. `malicious-code`.
            pub fn as_str(self) -> &'static str {
                match self { $( Taxonomy::$tax => $tax_name ),+ }
            }

            /// The types that belong to this taxonomy.
            pub fn types(self) -> &'static [ClassificationType] {
                match self { $( Taxonomy::$tax => &[$( ClassificationType::$ty ),+] ),+ }
            }

            fn from_name(name: &str) -> Option<Taxonomy> {
                match name { $( $tax_name => Some(Taxonomy::$tax), )+ _ => None }
            }
        }

        impl ClassificationType {
            /// Every type, grouped by taxonomy.
            pub const ALL: &'static [ClassificationType] = &[$( $( ClassificationType::$ty ),+ ),+];

            /// The wire name, e.g. `infected-system`.
            pub fn as_str(self) -> &'static str {
                match self { $( $( ClassificationType::$ty => $ty_name ),+ ),+ }
            }

            /// The taxonomy this type belongs to.
            pub fn taxonomy(self) -> Taxonomy {
                match self { $( $( ClassificationType::$ty )|+ => Taxonomy::$tax ),+ }
            }

            fn from_name(name: &str) -> Option<ClassificationType> {
                match name { $( $( $ty_name => Some(ClassificationType::$ty), )+ )+ _ => None }
            }
        }
    };
}

taxonomy! {
    AbusiveContent "abusive-content" {
        HarmfulSpeech "harmful-speech", Spam "spam", Violence "violence",
    }
    Availability "availability" {
        Ddos "ddos", Dos "dos", Misconfiguration "misconfiguration", Outage "outage",
        Sabotage "sabotage",
    }
    Fraud "fraud" {
        Copyright "copyright", Masquerade "masquerade", Phishing "phishing",
        UnauthorizedUseOfResources "unauthorized-use-of-resources",
    }
    InformationContentSecurity "information-content-security" {
        DataLeak "data-leak", DataLoss "data-loss",
        UnauthorisedInformationAccess "unauthorised-information-access",
        UnauthorisedInformationModification "unauthorised-information-modification",
    }
    InformationGathering "information-gathering" {
        Scanner "scanner", Sniffing "sniffing", SocialEngineering "social-engineering",
    }
    IntrusionAttempts "intrusion-attempts" {
        BruteForce "brute-force", Exploit "exploit", IdsAlert "ids-alert",
    }
    Intrusions "intrusions" {
        ApplicationCompromise "application-compromise", Burglary "burglary",
        PrivilegedAccountCompromise "privileged-account-compromise",
        SystemCompromise "system-compromise",
        UnprivilegedAccountCompromise "unprivileged-account-compromise",
    }
    MaliciousCode "malicious-code" {
        C2Server "c2-server", InfectedSystem "infected-system",
        MalwareConfiguration "malware-configuration", MalwareDistribution "malware-distribution",
    }
    Other "other" {
        Blacklist "blacklist", DgaDomain "dga-domain", Malware "malware", OtherType "other",
        Proxy "proxy", Tor "tor", Undetermined "undetermined",
    }
    Test "test" { TestType "test" }
    Vulnerable "vulnerable" {
        DdosAmplifier "ddos-amplifier", InformationDisclosure "information-disclosure",
        PotentiallyUnwantedAccessible "potentially-unwanted-accessible",
        VulnerableSystem "vulnerable-system", WeakCrypto "weak-crypto",
    }
}

/// How a name was recognized: as a current RSIT name or as an IntelMQ 2.x name mapped to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognized<T> {
    Current(T),
    Legacy(T),
}

impl<T: Copy> Recognized<T> {
    pub fn value(self) -> T {
        match self {
            Recognized::Current(v) | Recognized::Legacy(v) => v,
        }
    }
}

impl Taxonomy {
    /// Parses a taxonomy name, accepting IntelMQ 2.x spellings (`malicious code`, `Malicious Code`).
    pub fn parse(name: &str) -> Option<Recognized<Taxonomy>> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(t) = Taxonomy::from_name(&lower) {
            return Some(Recognized::Current(t));
        }
        Taxonomy::from_name(&lower.replace(' ', "-")).map(Recognized::Legacy)
    }
}

impl ClassificationType {
    /// Parses a type name, accepting and mapping the IntelMQ 2.x names (`botnet drone`, `c&c`, ...).
    pub fn parse(name: &str) -> Option<Recognized<ClassificationType>> {
        use ClassificationType as T;
        let lower = name.trim().to_ascii_lowercase();
        if let Some(t) = T::from_name(&lower) {
            return Some(Recognized::Current(t));
        }
        let legacy = match lower.replace(' ', "-").as_str() {
            "botnet-drone" | "infected-system" | "ransomware" => T::InfectedSystem,
            "c&c" | "c2server" => T::C2Server,
            "ids-alert" => T::IdsAlert,
            "malware-configuration" => T::MalwareConfiguration,
            "vulnerable-service" | "vulnerable-client" => T::VulnerableSystem,
            "leak" => T::DataLeak,
            "unknown" => T::Undetermined,
            "dga-domain" => T::DgaDomain,
            "compromised" | "backdoor" | "unauthorized-login" | "unauthorized-command" => T::SystemCompromise,
            "defacement" => T::UnauthorisedInformationModification,
            "dropzone" => T::OtherType,
            _ => return None,
        };
        Some(Recognized::Legacy(legacy))
    }
}

impl fmt::Display for Taxonomy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ClassificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_pairs_with_its_taxonomy() {
        for &t in ClassificationType::ALL {
            assert_eq!(ClassificationType::parse(t.as_str()), Some(Recognized::Current(t)));
            assert!(t.taxonomy().types().contains(&t), "{t} not listed under {}", t.taxonomy());
        }
        for &tax in Taxonomy::ALL {
            assert_eq!(Taxonomy::parse(tax.as_str()), Some(Recognized::Current(tax)));
        }
        assert_eq!(ClassificationType::ALL.len(), 44);
        assert_eq!(Taxonomy::ALL.len(), 11);
    }

    #[test]
    fn intelmq_2_names_are_mapped() {
        let check = |old: &str, new: &str| {
            let got = ClassificationType::parse(old).map(|r| r.value().as_str());
            assert_eq!(got, Some(new), "{old}");
            assert!(matches!(ClassificationType::parse(old), Some(Recognized::Legacy(_))));
        };
        check("botnet drone", "infected-system");
        check("c&c", "c2-server");
        check("C2server", "c2-server");
        check("ransomware", "infected-system");
        check("vulnerable service", "vulnerable-system");
        check("defacement", "unauthorised-information-modification");
        check("compromised", "system-compromise");
        check("unknown", "undetermined");
        check("leak", "data-leak");
        check("dropzone", "other");
        assert_eq!(Taxonomy::parse("Malicious Code"), Some(Recognized::Legacy(Taxonomy::MaliciousCode)));
        assert_eq!(ClassificationType::parse("botnet"), None);
    }
}
