//! Finds a key written twice in one YAML mapping. Serde's derived structs refuse a repeated
//! field, but maps (data sources, per-sheet settings) and anything flattened keep the last
//! value silently. This walks the whole document with the same YAML library before it is
//! read for real: the first pass stops at the second occurrence (the library attaches its line
//! and column to the error the walk raises there), and a second pass stops at the first
//! occurrence to find its line. Mappings are told apart by their order in the document.

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// The message the walk stops with; any other error is the real parse's to report.
const STOP: &str = "reportd: duplicate key found";

/// A key written twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The key as written.
    pub key: String,
    /// 1-based line and column of the second occurrence.
    pub at: (usize, usize),
    /// 1-based line of the first occurrence.
    pub first_line: usize,
}

/// The first key written twice in a mapping of `text`, if any. A document the library cannot
/// read gives `None`: its own parse reports that.
pub fn find(text: &str) -> Option<Duplicate> {
    let (map, key, at) = {
        let state = RefCell::new(State::default());
        let at = stop_location(text, &state)?;
        let (map, key) = state.into_inner().found?;
        (map, key, at)
    };
    let state = RefCell::new(State {
        target: Some((map, key.clone())),
        ..State::default()
    });
    let first_line = stop_location(text, &state).map_or(at.0, |(line, _)| line);
    Some(Duplicate {
        key,
        at,
        first_line,
    })
}

/// Walks `text`; where the walk stopped on purpose, the line and column.
fn stop_location(text: &str, state: &RefCell<State>) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (Walk { state }).deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(STOP) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

#[derive(Default)]
struct State {
    /// Mappings entered so far (the next one's number).
    maps: usize,
    /// First pass: the mapping number and key found twice.
    found: Option<(usize, String)>,
    /// Second pass: stop at this key of this mapping.
    target: Option<(usize, String)>,
}

/// Walks any value.
#[derive(Clone, Copy)]
struct Walk<'a> {
    state: &'a RefCell<State>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! accept_scalars {
    ($ret:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            $ret(self, v.to_string())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            $ret(self, "null".to_string())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            $ret(self, "null".to_string())
        }
    };
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    accept_scalars!(|_, _| Ok(()));

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let id = {
            let mut s = self.state.borrow_mut();
            s.maps += 1;
            s.maps
        };
        let mut seen = HashSet::new();
        loop {
            let key = Key {
                walk: self,
                map: id,
                seen: &mut seen,
            };
            if map.next_key_seed(key)?.is_none() {
                return Ok(());
            }
            map.next_value_seed(self)?;
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag is not a key; walk the value.
        let (de::IgnoredAny, variant) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// Reads one key of mapping `map` and stops the walk where the pass wants it to.
struct Key<'a, 'b> {
    walk: Walk<'a>,
    map: usize,
    seen: &'b mut HashSet<String>,
}

impl Key<'_, '_> {
    fn scalar<E: de::Error>(self, key: String) -> Result<(), E> {
        let mut s = self.walk.state.borrow_mut();
        let stop = match &s.target {
            Some((map, k)) => *map == self.map && *k == key,
            None => {
                let again = !self.seen.insert(key.clone());
                if again {
                    s.found = Some((self.map, key));
                }
                again
            }
        };
        if stop { Err(E::custom(STOP)) } else { Ok(()) }
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    accept_scalars!(Key::scalar);

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.walk.deserialize(d)
    }

    // Complex keys (a mapping or a list as a key) are walked but not compared.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.walk.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.walk.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        self.walk.visit_enum(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> Option<(String, usize, usize, usize)> {
        find(text).map(|d| (d.key, d.at.0, d.at.1, d.first_line))
    }

    #[test]
    fn finds_the_second_key_and_the_line_of_the_first() {
        let text = "a: 1\nexport:\n  x: 1\nb: 2\nexport:\n  y: 2\n";
        assert_eq!(dup(text), Some(("export".into(), 5, 1, 2)));
        let nested =
            "data_sources:\n  one:\n    type: sqlite\n  two: {}\n  one:\n    type: mysql\n";
        assert_eq!(dup(nested), Some(("one".into(), 5, 3, 2)));
        let in_list = "tasks:\n  - name: a\n    sql: x\n  - name: b\n    sql: y\n    name: c\n";
        assert_eq!(dup(in_list), Some(("name".into(), 6, 5, 4)));
        let flow = "x: {a: 1, b: 2, a: 3}\n";
        assert_eq!(dup(flow), Some(("a".into(), 1, 17, 1)));
    }

    #[test]
    fn the_same_key_in_different_mappings_and_broken_documents_pass() {
        assert_eq!(
            dup("a:\n  x: 1\nb:\n  x: 1\nlist:\n  - x: 1\n  - x: 2\n"),
            None
        );
        assert_eq!(dup("a: [1, 2\n"), None);
        assert_eq!(dup(""), None);
        assert_eq!(
            dup("base: &b {x: 1}\nother: *b\nthird: !tag {x: 1}\n"),
            None
        );
    }
}
