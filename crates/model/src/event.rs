//! The event: IntelMQ's harmonization fields as typed values, plus free `extra.*`.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::kinds::{self, FieldKind, FieldValue};
use crate::taxonomy::{ClassificationType, Recognized, Taxonomy};

pub use crate::extra::Extra;

macro_rules! fields {
    ($( $variant:ident $name:literal $kind:ident $snake:ident ),+ $(,)?) => {
        /// A harmonization field. The order is part of the stored encoding: append, never reorder.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $( $variant ),+ }

        impl Field {
            /// Every field, in their stored order.
            pub const ALL: &'static [Field] = &[$( Field::$variant ),+];

            /// The IntelMQ name, e.g. `source.geolocation.cc`.
            pub fn name(self) -> &'static str {
                match self { $( Field::$variant => $name ),+ }
            }

            /// What a valid value of this field looks like.
            pub fn expected(self) -> &'static str {
                match self { $( Field::$variant => <kinds::$kind as FieldKind>::EXPECTED ),+ }
            }

            pub fn from_name(name: &str) -> Option<Field> {
                match name { $( $name => Some(Field::$variant), )+ _ => None }
            }
        }

        /// One normalized observation. Every field is optional; [`Event::validate`] says which
        /// combinations make an event.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Event {
            $( pub $snake: Option<<kinds::$kind as FieldKind>::Value>, )+
            pub extra: Extra,
            /// An IntelMQ 2.x classification name was read: [`Event::validate`] then derives the
            /// taxonomy from the type instead of checking the pair.
            pub(crate) legacy_classification: bool,
        }

        impl Event {
            /// The value of a field, if present.
            pub fn get(&self, field: Field) -> Option<FieldValue<'_>> {
                match field {
                    $( Field::$variant => self.$snake.as_ref().map(<kinds::$kind as FieldKind>::view), )+
                }
            }

            /// Calls `f` with every present field, in the stored order: faster than [`Event::iter`].
            pub fn for_each(&self, mut f: impl FnMut(Field, FieldValue<'_>)) {
                $( if let Some(v) = &self.$snake {
                    f(Field::$variant, <kinds::$kind as FieldKind>::view(v));
                } )+
            }

            pub fn has(&self, field: Field) -> bool {
                match field { $( Field::$variant => self.$snake.is_some(), )+ }
            }

            /// Copies one field's value from another event.
            pub fn copy_field(&mut self, from: &Event, field: Field) {
                match field { $( Field::$variant => self.$snake.clone_from(&from.$snake), )+ }
            }

            /// Makes this event's texts cheap to copy into other events: for values that
            /// configuration sets on every event of a feed (see [`kinds::shared`]).
            pub fn share_texts(&mut self) {
                $( if let Some(v) = &mut self.$snake { <kinds::$kind as FieldKind>::share(v); } )+
            }

            pub fn remove(&mut self, field: Field) {
                match field { $( Field::$variant => self.$snake = None, )+ }
            }

            fn set_parsed(&mut self, field: Field, text: Option<&str>, json: Option<&Value>) -> bool {
                match field {
                    $( Field::$variant => {
                        let v = match (text, json) {
                            (Some(s), _) => <kinds::$kind as FieldKind>::parse(s),
                            (None, Some(j)) => <kinds::$kind as FieldKind>::from_json(j),
                            (None, None) => None,
                        };
                        let ok = v.is_some();
                        if ok { self.$snake = v; }
                        ok
                    } )+
                }
            }

            /// Writes the fields that differ from `base`: present ones as index and value,
            /// ones that `base` has and this event lacks as a tombstone.
            pub(crate) fn encode_fields(&self, base: &Event, out: &mut Vec<u8>) {
                use crate::codec::Codec as _;
                $( match (&self.$snake, &base.$snake) {
                    (Some(v), Some(b)) if v == b => {}
                    (Some(v), _) => {
                        out.push(Field::$variant as u8);
                        v.encode(out);
                    }
                    (None, Some(_)) => out.extend_from_slice(&[crate::codec::TOMBSTONE, Field::$variant as u8]),
                    (None, None) => {}
                } )+
            }

            pub(crate) fn decode_field(&mut self, field: Field, input: &mut &[u8]) -> Option<()> {
                use crate::codec::Codec;
                match field {
                    $( Field::$variant => {
                        self.$snake = Some(Codec::decode(input)?);
                    } )+
                }
                Some(())
            }
        }
    };
}

fields! {
    TimeSource "time.source" Time time_source,
    TimeObservation "time.observation" Time time_observation,
    FeedName "feed.name" Text feed_name,
    FeedProvider "feed.provider" Text feed_provider,
    FeedAccuracy "feed.accuracy" Accuracy feed_accuracy,
    FeedCode "feed.code" Text feed_code,
    FeedUrl "feed.url" Url feed_url,
    FeedDocumentation "feed.documentation" Text feed_documentation,
    ClassificationTaxonomy "classification.taxonomy" TaxonomyKind classification_taxonomy,
    ClassificationType "classification.type" TypeKind classification_type,
    ClassificationIdentifier "classification.identifier" Text classification_identifier,
    SourceIp "source.ip" Ip source_ip,
    SourcePort "source.port" Port source_port,
    SourceAsn "source.asn" Asn source_asn,
    SourceAsName "source.as_name" Text source_as_name,
    SourceNetwork "source.network" Network source_network,
    SourceFqdn "source.fqdn" Fqdn source_fqdn,
    SourceUrl "source.url" Url source_url,
    SourceUrlpath "source.urlpath" Text source_urlpath,
    SourceReverseDns "source.reverse_dns" Fqdn source_reverse_dns,
    SourceAbuseContact "source.abuse_contact" Lower source_abuse_contact,
    SourceAccount "source.account" Text source_account,
    SourceLocalIp "source.local_ip" Ip source_local_ip,
    SourceLocalHostname "source.local_hostname" Text source_local_hostname,
    SourceDomainSuffix "source.domain_suffix" Fqdn source_domain_suffix,
    SourceRegistry "source.registry" Registry source_registry,
    SourceAllocated "source.allocated" Time source_allocated,
    SourceTorNode "source.tor_node" Boolean source_tor_node,
    SourceGeolocationCc "source.geolocation.cc" CountryCode source_geolocation_cc,
    SourceGeolocationCountry "source.geolocation.country" Text source_geolocation_country,
    SourceGeolocationRegion "source.geolocation.region" Text source_geolocation_region,
    SourceGeolocationCity "source.geolocation.city" Text source_geolocation_city,
    SourceGeolocationState "source.geolocation.state" Text source_geolocation_state,
    SourceGeolocationLatitude "source.geolocation.latitude" Float source_geolocation_latitude,
    SourceGeolocationLongitude "source.geolocation.longitude" Float source_geolocation_longitude,
    SourceGeolocationGeoipCc "source.geolocation.geoip_cc" CountryCode source_geolocation_geoip_cc,
    SourceGeolocationCymruCc "source.geolocation.cymru_cc" CountryCode source_geolocation_cymru_cc,
    DestinationIp "destination.ip" Ip destination_ip,
    DestinationPort "destination.port" Port destination_port,
    DestinationAsn "destination.asn" Asn destination_asn,
    DestinationAsName "destination.as_name" Text destination_as_name,
    DestinationNetwork "destination.network" Network destination_network,
    DestinationFqdn "destination.fqdn" Fqdn destination_fqdn,
    DestinationUrl "destination.url" Url destination_url,
    DestinationUrlpath "destination.urlpath" Text destination_urlpath,
    DestinationReverseDns "destination.reverse_dns" Fqdn destination_reverse_dns,
    DestinationAbuseContact "destination.abuse_contact" Lower destination_abuse_contact,
    DestinationAccount "destination.account" Text destination_account,
    DestinationLocalIp "destination.local_ip" Ip destination_local_ip,
    DestinationLocalHostname "destination.local_hostname" Text destination_local_hostname,
    DestinationDomainSuffix "destination.domain_suffix" Fqdn destination_domain_suffix,
    DestinationRegistry "destination.registry" Registry destination_registry,
    DestinationAllocated "destination.allocated" Time destination_allocated,
    DestinationTorNode "destination.tor_node" Boolean destination_tor_node,
    DestinationGeolocationCc "destination.geolocation.cc" CountryCode destination_geolocation_cc,
    DestinationGeolocationCountry "destination.geolocation.country" Text destination_geolocation_country,
    DestinationGeolocationRegion "destination.geolocation.region" Text destination_geolocation_region,
    DestinationGeolocationCity "destination.geolocation.city" Text destination_geolocation_city,
    DestinationGeolocationState "destination.geolocation.state" Text destination_geolocation_state,
    DestinationGeolocationLatitude "destination.geolocation.latitude" Float destination_geolocation_latitude,
    DestinationGeolocationLongitude "destination.geolocation.longitude" Float destination_geolocation_longitude,
    ProtocolTransport "protocol.transport" Transport protocol_transport,
    ProtocolApplication "protocol.application" LowerPrintable protocol_application,
    MalwareName "malware.name" LowerPrintable malware_name,
    MalwareVersion "malware.version" Printable malware_version,
    MalwareHashMd5 "malware.hash.md5" Printable malware_hash_md5,
    MalwareHashSha1 "malware.hash.sha1" Printable malware_hash_sha1,
    MalwareHashSha256 "malware.hash.sha256" Printable malware_hash_sha256,
    EventDescriptionText "event_description.text" Text event_description_text,
    EventDescriptionUrl "event_description.url" Url event_description_url,
    EventDescriptionTarget "event_description.target" Text event_description_target,
    Tlp "tlp" TlpKind tlp,
    Comment "comment" Text comment,
    Status "status" Text status,
    ScreenshotUrl "screenshot_url" Url screenshot_url,
    RtirId "rtir_id" Integer rtir_id,
    MispEventUuid "misp.event_uuid" Uuid misp_event_uuid,
    MispAttributeUuid "misp.attribute_uuid" Uuid misp_attribute_uuid,
    EventHash "event_hash" HashText event_hash,
    Raw "raw" Base64 raw,
    Output "output" Json output,
}

/// A value that does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: expected {expected}, found {found}")]
pub struct FieldError {
    pub field: String,
    pub expected: std::borrow::Cow<'static, str>,
    /// The offending value, quoted and shortened.
    pub found: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        expected: impl Into<std::borrow::Cow<'static, str>>,
        found: &str,
    ) -> FieldError {
        FieldError { field: field.into(), expected: expected.into(), found: quote_short(found) }
    }
}

/// `"value"`, cut to 80 characters so that an error message stays one readable line.
pub fn quote_short(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}... ({} bytes)", s.len())
    }
}

/// Why an event as a whole is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("classification.taxonomy: expected {expected} for classification.type {kind}, found {found}")]
    TaxonomyMismatch { kind: &'static str, expected: &'static str, found: &'static str },
    #[error("event has no time: expected time.source or time.observation")]
    NoTime,
    #[error(
        "event has nothing to act on: expected at least one of source.ip, source.fqdn, source.url, \
         source.network, source.asn, source.account, destination.ip, destination.fqdn, destination.url, \
         or a malware hash"
    )]
    NoObservable,
}

/// The fields that identify what an event is about; an event needs one of them.
const OBSERVABLES: &[Field] = &[
    Field::SourceIp,
    Field::SourceFqdn,
    Field::SourceUrl,
    Field::SourceNetwork,
    Field::SourceAsn,
    Field::SourceAccount,
    Field::DestinationIp,
    Field::DestinationFqdn,
    Field::DestinationUrl,
    Field::DestinationNetwork,
    Field::MalwareHashMd5,
    Field::MalwareHashSha1,
    Field::MalwareHashSha256,
];

/// A deterministic 64-bit digest of what an event says, used to store each observation once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventHash(pub u64);

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for EventHash {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<EventHash, Self::Err> {
        u64::from_str_radix(s, 16).map(EventHash)
    }
}

impl Event {
    /// Sets a field from text, sanitized as its kind requires. `extra.NAME` keys store the text
    /// under `extra`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), FieldError> {
        match resolve(name)? {
            Target::Extra(key) => {
                self.extra.insert(key, Value::String(value.to_owned()));
                Ok(())
            }
            Target::Field(field) => self.set_field(field, value),
        }
    }

    /// Sets a known field from text.
    pub fn set_field(&mut self, field: Field, value: &str) -> Result<(), FieldError> {
        self.set_checked(field, Some(value), None)
            .then_some(())
            .ok_or_else(|| FieldError::new(field.name(), field.expected(), value))
    }

    /// Sets a time field.
    pub fn set_timestamp(&mut self, field: Field, t: crate::Timestamp) -> Result<(), FieldError> {
        let slot = match field {
            Field::TimeSource => &mut self.time_source,
            Field::TimeObservation => &mut self.time_observation,
            Field::SourceAllocated => &mut self.source_allocated,
            Field::DestinationAllocated => &mut self.destination_allocated,
            other => return Err(FieldError::new(other.name(), other.expected(), &t.to_string())),
        };
        *slot = Some(t);
        Ok(())
    }

    /// Sets a field from a JSON value (strings, numbers and booleans are converted as the field's
    /// kind allows); `null` is ignored.
    pub fn set_json(&mut self, name: &str, value: &Value) -> Result<(), FieldError> {
        if value.is_null() {
            return Ok(());
        }
        match resolve(name)? {
            Target::Extra(key) => {
                self.extra.insert(key, value.clone());
                Ok(())
            }
            Target::Field(field) => self.set_checked(field, None, Some(value)).then_some(()).ok_or_else(|| {
                let found = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                FieldError::new(field.name(), field.expected(), &found)
            }),
        }
    }

    /// Notes IntelMQ 2.x classification names, so that [`Event::validate`] can derive the
    /// taxonomy from the type whatever order the two arrived in.
    fn set_checked(&mut self, field: Field, text: Option<&str>, json: Option<&Value>) -> bool {
        let name = text.or_else(|| json.and_then(Value::as_str));
        let legacy = match (field, name) {
            (Field::ClassificationType, Some(n)) => matches!(ClassificationType::parse(n), Some(Recognized::Legacy(_))),
            (Field::ClassificationTaxonomy, Some(n)) => matches!(Taxonomy::parse(n), Some(Recognized::Legacy(_))),
            _ => false,
        };
        let ok = self.set_parsed(field, text, json);
        self.legacy_classification |= ok && legacy;
        ok
    }

    /// Checks the event as a whole and fills what follows from it: the taxonomy from the type,
    /// `undetermined` when a feed gave no classification at all.
    pub fn validate(&mut self) -> Result<(), EventError> {
        if std::mem::take(&mut self.legacy_classification) {
            self.classification_taxonomy =
                self.classification_type.map(ClassificationType::taxonomy).or(self.classification_taxonomy);
        }
        match (self.classification_type, self.classification_taxonomy) {
            (Some(t), None) => self.classification_taxonomy = Some(t.taxonomy()),
            (Some(t), Some(tax)) if t.taxonomy() != tax => {
                return Err(EventError::TaxonomyMismatch {
                    kind: t.as_str(),
                    expected: t.taxonomy().as_str(),
                    found: tax.as_str(),
                });
            }
            (None, None) => {
                self.classification_type = Some(ClassificationType::Undetermined);
                self.classification_taxonomy = Some(Taxonomy::Other);
            }
            _ => {}
        }
        if self.time_source.is_none() && self.time_observation.is_none() {
            return Err(EventError::NoTime);
        }
        if !OBSERVABLES.iter().any(|&f| self.has(f)) {
            return Err(EventError::NoObservable);
        }
        Ok(())
    }

    /// When the event happened: the source's time, or when it was observed.
    /// The malware family: `classification.identifier` of malicious-code events (IntelMQ's
    /// "the malware family name" there: CTIP's `Malware`, Shadowserver's `infection`), in lower
    /// case; else `malware.name`.
    pub fn family(&self) -> Option<compact_str::CompactString> {
        let identifier = (self.classification_identifier.as_deref())
            .filter(|_| self.classification_taxonomy == Some(crate::Taxonomy::MaliciousCode));
        identifier.map(|i| i.to_lowercase().into()).or_else(|| self.malware_name.clone())
    }

    pub fn time(&self) -> Option<crate::Timestamp> {
        self.time_source.or(self.time_observation)
    }

    /// Every present field with its value, in the stored order, then `extra.*`.
    pub fn iter(&self) -> impl Iterator<Item = (Field, FieldValue<'_>)> + '_ {
        Field::ALL.iter().filter_map(move |&f| self.get(f).map(|v| (f, v)))
    }

    /// The deduplication digest: SHA-256 over every field except `time.observation`, `raw` and
    /// IntelMQ's own `event_hash` (which say when and how we saw it, not what was seen), and
    /// over `extra`, cut to 64 bits. Computed on what the feed said, before enrichment.
    pub fn hash(&self) -> EventHash {
        let mut h = Vec::with_capacity(512);
        self.for_each(|field, value| {
            if !matches!(field, Field::TimeObservation | Field::Raw | Field::EventHash) {
                hash_field(&mut h, field, value);
            }
        });
        for (key, value) in &self.extra {
            h.push(0xFF);
            hash_bytes(&mut h, key.as_bytes());
            hash_json(&mut h, value);
        }
        finish_hash(&h)
    }

    /// A digest of some fields only, and of `salt`: the identity of an aggregate (its key
    /// fields, the feed and the time window).
    pub fn hash_of(&self, fields: &[Field], salt: &[u8]) -> EventHash {
        let mut h = Vec::with_capacity(256);
        hash_bytes(&mut h, salt);
        for &field in fields {
            match self.get(field) {
                Some(value) => hash_field(&mut h, field, value),
                None => h.extend([0xFE, field as u8]),
            }
        }
        finish_hash(&h)
    }
}

// The bytes to hash are gathered first and hashed in one call, not fed to the hasher a few
// bytes at a time.

fn hash_field(h: &mut Vec<u8>, field: Field, value: FieldValue<'_>) {
    // Fields keep their position forever, so the position names the field.
    h.push(field as u8);
    match value {
        FieldValue::Str(s) => hash_bytes(h, s.as_bytes()),
        FieldValue::Int(i) => h.extend(i.to_le_bytes()),
        FieldValue::Float(f) => h.extend(f.to_bits().to_le_bytes()),
        FieldValue::Bool(b) => h.push(u8::from(b)),
        FieldValue::Ip(ip) => hash_ip(h, ip),
        FieldValue::Net(net) => {
            hash_ip(h, net.addr());
            h.push(net.prefix_len());
        }
        FieldValue::Time(t) => h.extend(t.micros().to_le_bytes()),
        FieldValue::Json(v) => hash_json(h, v),
    }
}

fn finish_hash(bytes: &[u8]) -> EventHash {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    EventHash(u64::from_be_bytes(first))
}

fn hash_bytes(h: &mut Vec<u8>, bytes: &[u8]) {
    h.extend((bytes.len() as u64).to_le_bytes());
    h.extend_from_slice(bytes);
}

fn hash_ip(h: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => h.extend(v4.octets()),
        std::net::IpAddr::V6(v6) => h.extend(v6.octets()),
    }
}

fn hash_json(h: &mut Vec<u8>, value: &Value) {
    // Serializing into memory cannot fail; the terminator keeps values apart.
    let _ = serde_json::to_writer(&mut *h, value);
    h.push(0x1E);
}

enum Target<'a> {
    Field(Field),
    Extra(&'a str),
}

fn resolve(name: &str) -> Result<Target<'_>, FieldError> {
    if let Some(key) = name.strip_prefix("extra.") {
        if key.is_empty() {
            return Err(FieldError::new(name, "a name after extra.", ""));
        }
        return Ok(Target::Extra(key));
    }
    Field::from_name(name).map(Target::Field).ok_or_else(|| FieldError {
        field: name.to_owned(),
        expected: "a harmonization field name (extra fields start with extra.)".into(),
        found: "an unknown field".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pairs: &[(&str, &str)]) -> Event {
        let mut e = Event::default();
        for (k, v) in pairs {
            e.set(k, v).unwrap();
        }
        e
    }

    #[test]
    fn field_names_are_unique_and_resolve() {
        for &f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
        assert_eq!(Field::ALL.len(), 81);
    }

    #[test]
    fn errors_name_the_field_the_value_and_what_was_expected() {
        let mut e = Event::default();
        let err = e.set("source.ip", "999.1.1.1").unwrap_err();
        assert_eq!(err.to_string(), r#"source.ip: expected an IPv4 or IPv6 address, found "999.1.1.1""#);
        let err = e.set("source.port", "http").unwrap_err();
        assert_eq!(err.to_string(), r#"source.port: expected a port number from 0 to 65535, found "http""#);
        let err = e.set("source.ipaddr", "1.2.3.4").unwrap_err();
        assert!(err.to_string().starts_with("source.ipaddr: expected a harmonization field name"));
        let long = "x".repeat(500);
        let err = e.set("tlp", &long).unwrap_err();
        assert!(err.to_string().ends_with("... (500 bytes)"), "{err}");
    }

    #[test]
    fn taxonomy_follows_type() {
        let mut e = event(&[("classification.type", "infected-system"), ("source.ip", "192.0.2.1")]);
        e.time_observation = crate::Timestamp::from_secs(0);
        e.validate().unwrap();
        assert_eq!(e.classification_taxonomy, Some(Taxonomy::MaliciousCode));

        let mut e = event(&[
            ("classification.type", "infected-system"),
            ("classification.taxonomy", "fraud"),
            ("source.ip", "192.0.2.1"),
            ("time.source", "2024-01-01"),
        ]);
        assert_eq!(
            e.validate().unwrap_err().to_string(),
            "classification.taxonomy: expected malicious-code for classification.type infected-system, found fraud"
        );
    }

    #[test]
    fn legacy_pairs_are_mapped_in_either_order() {
        for pairs in [
            [("classification.taxonomy", "intrusions"), ("classification.type", "defacement")],
            [("classification.type", "defacement"), ("classification.taxonomy", "intrusions")],
        ] {
            let mut e = event(&pairs);
            e.set("source.fqdn", "site.example.pt").unwrap();
            e.set("time.source", "2024-01-01").unwrap();
            e.validate().unwrap();
            assert_eq!(e.classification_type, Some(ClassificationType::UnauthorisedInformationModification));
            assert_eq!(e.classification_taxonomy, Some(Taxonomy::InformationContentSecurity));
        }
    }

    #[test]
    fn an_event_needs_time_and_an_observable() {
        let mut e = event(&[("classification.type", "spam")]);
        assert_eq!(e.validate(), Err(EventError::NoTime));
        e.set("time.source", "2024-01-01").unwrap();
        assert_eq!(e.validate(), Err(EventError::NoObservable));
        e.set("source.account", "victim@example.pt").unwrap();
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn hash_ignores_observation_time_and_raw_but_nothing_else() {
        let a = event(&[("source.ip", "192.0.2.1"), ("time.source", "2024-01-01"), ("extra.tag", "x")]);
        let mut b = a.clone();
        b.set("time.observation", "2025-01-01").unwrap();
        b.set("raw", "aGVsbG8=").unwrap();
        assert_eq!(a.hash(), b.hash());
        let mut c = a.clone();
        c.set("extra.tag", "y").unwrap();
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.set("source.port", "1").unwrap();
        assert_ne!(a.hash(), d.hash());
        assert_eq!(a.hash().to_string().len(), 16);
        assert_eq!(a.hash().to_string().parse::<EventHash>().unwrap(), a.hash());
    }

    /// Stored events are deduplicated by these digests: the bytes hashed must never change.
    #[test]
    fn hashes_are_pinned() {
        let mut e = event(&[
            ("time.source", "2024-06-01T10:12:44.25+00:00"),
            ("source.ip", "2001:db8::1"),
            ("destination.ip", "192.0.2.9"),
            ("source.port", "65535"),
            ("source.network", "192.0.2.0/24"),
            ("source.tor_node", "true"),
            ("feed.accuracy", "87.5"),
            ("classification.type", "infected-system"),
            ("source.fqdn", "caf\u{e9}.example.pt"),
            ("extra.tag", "x"),
        ]);
        e.set_json("extra.nested", &serde_json::json!({"b": [1, "two", null], "a": {"c": 1.5}})).unwrap();
        assert_eq!(e.hash().to_string(), "9469a934aac13e95");
        assert_eq!(e.hash_of(&[Field::SourceIp, Field::DestinationPort], b"salt").to_string(), "b3b6256bac5e218e");
    }
}
