//! Value types that parse once while the config is read: sizes (`10MB`), IANA time zones and
//! log levels. A bad value is a serde error, so it is reported at its line and column.

use chrono_tz::Tz;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why a size, time zone or log level was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// No number at the start of a size.
    #[error("{0:?} is not a size (examples: 1048576, 10MB, 512KB)")]
    NotASize(String),
    /// A size unit other than B, KB, MB, GB, TB.
    #[error("unknown size unit {unit:?} in {input:?} (use B, KB, MB, GB)")]
    SizeUnit {
        /// The unit as written.
        unit: String,
        /// The whole value.
        input: String,
    },
    /// Not an IANA zone name.
    #[error("unknown time zone {0:?} (expected an IANA name such as Asia/Shanghai)")]
    TimeZone(String),
    /// Not a log level.
    #[error("unknown log level {0:?} (use DEBUG, INFO, WARNING or ERROR)")]
    LogLevel(String),
    /// A `${ENV}` reference that could not be expanded.
    #[error(transparent)]
    Env(#[from] super::env::EnvError),
}

/// A size in bytes, written as a number (`104857600`) or with a unit (`10MB`, `512 KiB`, `1G`).
/// Units are binary: 1 KB = 1024 bytes, as the seed system counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 = num
            .parse()
            .map_err(|_| UnitError::NotASize(s.to_string()))?;
        let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            "T" | "TB" | "TIB" => 1 << 40,
            other => {
                return Err(UnitError::SizeUnit {
                    unit: other.to_string(),
                    input: s.to_string(),
                });
            }
        };
        Ok(ByteSize((num * mult as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TB", 1 << 40),
            ("GB", 1 << 30),
            ("MB", 1 << 20),
            ("KB", 1 << 10),
        ];
        for (name, size) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{name}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(ByteSize(n)),
            Raw::Str(s) => super::env::expand(&s)
                .map_err(UnitError::from)
                .and_then(|s| s.parse())
                .map_err(de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// An IANA time zone name such as `Asia/Shanghai`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(Tz::Asia__Shanghai)
    }
}

impl FromStr for TimeZone {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<Tz>()
            .map(TimeZone)
            .map_err(|_| UnitError::TimeZone(s.to_string()))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::env::string(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

/// A log level; accepts the seed's `INFO`, `WARNING`, `CRITICAL` as well as tracing's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(pub tracing::Level);

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel(tracing::Level::INFO)
    }
}

impl FromStr for LogLevel {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use tracing::Level;
        let level = match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Level::TRACE,
            "debug" => Level::DEBUG,
            "info" => Level::INFO,
            "warn" | "warning" => Level::WARN,
            "error" | "critical" | "fatal" => Level::ERROR,
            _ => {
                return Err(UnitError::LogLevel(s.to_string()));
            }
        };
        Ok(LogLevel(level))
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::env::string(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("10MB".parse::<ByteSize>().unwrap(), ByteSize(10 << 20));
        assert_eq!("512 kb".parse::<ByteSize>().unwrap(), ByteSize(512 << 10));
        assert_eq!("1.5G".parse::<ByteSize>().unwrap(), ByteSize(3 << 29));
        assert_eq!("42".parse::<ByteSize>().unwrap(), ByteSize(42));
        assert!("ten MB".parse::<ByteSize>().is_err());
        assert!(
            "10XB"
                .parse::<ByteSize>()
                .unwrap_err()
                .to_string()
                .contains("unit")
        );
        assert_eq!(ByteSize(25 << 20).to_string(), "25MB");
    }

    #[test]
    fn zones_and_levels() {
        assert_eq!(
            "Europe/Berlin".parse::<TimeZone>().unwrap().to_string(),
            "Europe/Berlin"
        );
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
        assert_eq!(
            "WARNING".parse::<LogLevel>().unwrap().0,
            tracing::Level::WARN
        );
        assert!("loud".parse::<LogLevel>().is_err());
    }
}
