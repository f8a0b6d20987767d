//! One parser per kind of value a setting may hold (a switch, a count, a size, a
//! duration), used for every source: environment variables, configuration files and
//! flags. A value that is not understood is an error naming what is accepted: a
//! setting that guards something (`XCACHE_READ_ONLY`) must never read `maybe` as off.
//!
//! Each parser returns the accepted forms as its error; the caller adds the name of
//! the variable, key or flag ([`invalid`]).

use std::time::Duration;

use crate::errors::CliError;

/// What [`parse_bool`] accepts.
pub const BOOL_FORMS: &str = "1, true, yes, on or 0, false, no, off";
/// What [`parse_count`] accepts.
pub const COUNT_FORMS: &str = "a whole number of at least 1, as in 16";
/// What [`parse_size`] accepts.
pub const SIZE_FORMS: &str = "a size such as 10G, 500MiB or 2000000000 (bytes; K, M, G, T are powers of 1024, KB, MB, GB, TB of 1000)";
/// What [`parse_duration`] accepts.
pub const DURATION_FORMS: &str = "a duration such as 90s, 30m, 12h, 7d or 2w";

/// A switch. Case does not matter; anything else than the forms of [`BOOL_FORMS`] is an
/// error.
pub fn parse_bool(value: &str) -> Result<bool, &'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(BOOL_FORMS),
    }
}

/// A count of at least 1.
pub fn parse_count(value: &str) -> Result<usize, &'static str> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(COUNT_FORMS),
    }
}

/// A size in bytes: a whole or decimal number with an optional unit.
pub fn parse_size(value: &str) -> Result<u64, &'static str> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(SIZE_FORMS),
    };
    scaled(number, factor).ok_or(SIZE_FORMS)
}

/// A duration: a number and one of the units `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(value: &str) -> Result<Duration, &'static str> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let factor: u64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(DURATION_FORMS),
    };
    scaled(number, factor)
        .map(Duration::from_secs)
        .ok_or(DURATION_FORMS)
}

/// `number * factor` for a plain decimal number (`1.5`), without overflow.
fn scaled(number: &str, factor: u64) -> Option<u64> {
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut out = whole.checked_mul(factor)?;
    if !frac.is_empty() {
        let denom = 10u64.pow(frac.len() as u32);
        let f: u64 = frac.parse().ok()?;
        out = out.checked_add((u128::from(f) * u128::from(factor) / u128::from(denom)) as u64)?;
    }
    Some(out)
}

/// The error for a value `parse_*` refused: names where it came from and what is
/// accepted.
pub fn invalid(name: &str, value: &str, accepted: &str) -> CliError {
    CliError::InvalidSetting {
        name: name.to_string(),
        value: value.to_string(),
        message: format!("expected {accepted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_fail_closed() {
        for on in ["1", "true", "TRUE", "True", "yes", "on", " On "] {
            assert_eq!(parse_bool(on), Ok(true), "{on}");
        }
        for off in ["0", "false", "FALSE", "no", "off"] {
            assert_eq!(parse_bool(off), Ok(false), "{off}");
        }
        for bad in ["maybe", "", "2", "y", "enabled", "truee"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_sizes_durations() {
        assert_eq!(parse_count("16"), Ok(16));
        for bad in ["0", "-1", "abc", "1.5", ""] {
            assert!(parse_count(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("10 GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "G", "10X", "1..5G", "-1G", "1.G5", "99999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "7", "d", "7y", "-1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
