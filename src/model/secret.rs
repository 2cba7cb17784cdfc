//! `Secret`: a string (password, token, webhook secret) that never shows itself in `Debug`,
//! `Display` or logs. Call [`Secret::expose`] at the one place that needs the real value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A secret string. `Debug` and `Display` print `***`; [`Secret::expose`] gives the value.
///
/// Serializing writes the real value: it is used only for the store and for `task export`,
/// whose output is the operator's own file. Views meant for people use [`Secret::masked`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value. Keep its use narrow: connection options, signing, login.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What people may see: `***` when set, empty when not.
    pub fn masked(&self) -> &'static str {
        if self.0.is_empty() { "" } else { "***" }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Plain deserialization, no `${ENV}` expansion: config fields expand through
/// [`crate::model::env::secret`]; task files keep the reference and expand it at use.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// In the API document a secret is a string.
impl utoipa::PartialSchema for Secret {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl utoipa::ToSchema for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(Secret::default().masked(), "");
    }
}
