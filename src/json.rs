//! JSON objects whose member names are unique. serde_json keeps the last of
//! two equal names; another library (or the app, decoding the token it is
//! handed) may keep the first, so `{"sub":"bob","sub":"root"}` would name two
//! subjects. RFC 7519 §4 lets a JWT parser reject such a token, RFC 8259 §4
//! calls such objects unpredictable; tokengate refuses them wherever it
//! believes what a JSON object says: token payloads, introspection answers,
//! provider metadata.

use serde_json::{Map, Value};

/// `bytes` as a JSON object with unique member names, or `None`.
pub fn unique_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<UniqueKeys>(bytes).ok().map(|u| u.0)
}

struct UniqueKeys(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&name) {
                        return Err(serde::de::Error::custom("duplicate member name"));
                    }
                    map.insert(name, value);
                }
                Ok(UniqueKeys(map))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::unique_object;

    #[test]
    fn duplicates_and_non_objects_are_refused() {
        assert!(unique_object(br#"{"a": 1, "b": {"a": 2}}"#).is_some());
        assert!(unique_object(br#"{"sub": "bob", "sub": "root"}"#).is_none());
        assert!(unique_object(br#"{"active": false, "active": true}"#).is_none());
        assert!(unique_object(b"[1]").is_none());
        assert!(unique_object(b"{} x").is_none());
    }
}
