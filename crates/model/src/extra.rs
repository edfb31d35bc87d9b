//! `extra.*`: the free-form values an event carries beside its harmonization fields.

use std::ops::Index;

use compact_str::CompactString;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// Free-form data under `extra.`, keyed without the prefix and kept in key order.
///
/// An event carries a handful of extras, often one per unmapped column of every record of a
/// report, so they live in one sorted vector with their keys inline: adding one costs no
/// allocation for its key and none for a tree node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra(Vec<(CompactString, Value)>);

impl Extra {
    pub fn new() -> Extra {
        Extra::default()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: impl AsRef<str>, value: Value) -> Option<Value> {
        let key = key.as_ref();
        match self.find(key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (CompactString::from(key), value));
                None
            }
        }
    }

    /// Sets `key` unless it is already set.
    pub fn insert_if_absent(&mut self, key: &str, value: impl FnOnce() -> Value) {
        if let Err(i) = self.find(key) {
            self.0.insert(i, (CompactString::from(key), value()));
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (CompactString, Value)>,
        fn(&'a (CompactString, Value)) -> (&'a str, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Extra {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Extra {
        let mut extra = Extra::new();
        for (k, v) in iter {
            extra.insert(k, v);
        }
        extra
    }
}

impl Index<&str> for Extra {
    type Output = Value;

    /// The value of `key`; panics when there is none, as a map's index does.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or_else(|| panic!("no extra.{key}"))
    }
}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_keys_in_order_and_once() {
        let mut e = Extra::new();
        assert_eq!(e.insert("b", json!(1)), None);
        e.insert("a", json!(2));
        e.insert("c", json!(3));
        assert_eq!(e.insert("b", json!(4)), Some(json!(1)));
        e.insert_if_absent("a", || json!(9));
        e.insert_if_absent("d", || json!(5));
        assert_eq!(e.keys().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(e["b"], json!(4));
        assert_eq!(e.remove("c"), Some(json!(3)));
        assert!(!e.contains_key("c") && e.get("c").is_none());
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"a":2,"b":4,"d":5}"#);
    }
}
