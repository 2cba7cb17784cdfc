//! Numbers for people: `1,000`, `2.5MB`, `3.2秒`/`3.2s`, `1分45秒`/`1m 45s`. Used in
//! summaries, logs, messages and the console.

use std::time::Duration;

/// An integer with thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size with one decimal and a binary unit, as the seed system wrote it: `512B`, `2.5KB`,
/// `48.3MB`, `1.2GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1}{unit}")
}

/// Seconds with one decimal: `3.2s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A long span in its two largest units: `3d 4h`, `2h 5m`, `5m 10s`, `42s`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{mins}m {secs}s"),
        (0, _, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// A span in its two largest units, in Chinese (`3.2秒`, `1分45秒`, `2小时5分`, `3天4小时`)
/// or English (`3.2s`, `1m 45s`, `2h 5m`, `3d 4h`); under a minute with one decimal.
pub fn span(d: Duration, chinese: bool) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (chinese, days, hours, mins) {
        (true, 0, 0, 0) => format!("{:.1}秒", d.as_secs_f64()),
        (true, 0, 0, _) => format!("{mins}分{secs}秒"),
        (true, 0, _, _) => format!("{hours}小时{mins}分"),
        (true, ..) => format!("{days}天{hours}小时"),
        (false, 0, 0, 0) => seconds(d),
        (false, ..) => uptime(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(2560), "2.5KB");
        assert_eq!(bytes(5 << 30), "5.0GB");
        assert_eq!(seconds(Duration::from_millis(3210)), "3.2s");
        assert_eq!(uptime(Duration::from_secs(42)), "42s");
        assert_eq!(uptime(Duration::from_secs(310)), "5m 10s");
        assert_eq!(uptime(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(
            uptime(Duration::from_secs(3 * 86_400 + 4 * 3600 + 9)),
            "3d 4h"
        );
        let cases = [
            (3_210, "3.2秒", "3.2s"),
            (105_000, "1分45秒", "1m 45s"),
            (7_500_000, "2小时5分", "2h 5m"),
            ((3 * 86_400 + 4 * 3600 + 9) * 1000, "3天4小时", "3d 4h"),
        ];
        for (ms, zh, en) in cases {
            assert_eq!(span(Duration::from_millis(ms), true), zh);
            assert_eq!(span(Duration::from_millis(ms), false), en);
        }
    }
}
