//! Durations as features and the command line write them: `500 ms`, `15 s`,
//! `30 seconds`, `2 min`, `1 h`, `-2 days`, `+10 years`.
//!
//! A year is 365 days: the lab uses years only to push a clock far outside a
//! certificate's window, where leap days do not matter.
//!
//! ```
//! use hil::duration::parse_duration;
//!
//! assert_eq!(parse_duration("-2 days")?, time::Duration::days(-2));
//! assert_eq!(parse_duration("15s")?, time::Duration::seconds(15));
//! assert!(parse_duration("2 fortnights").is_err());
//! # Ok::<(), hil::duration::DurationError>(())
//! ```

use time::Duration;

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{given}` is not a duration")]
#[diagnostic(
    code(hil::duration::invalid),
    help("write a whole number, an optional sign and a unit: ms, s, seconds, min, h, days, years (e.g. `-2 days`, `500 ms`)")
)]
pub struct DurationError {
    /// What was given.
    pub given: String,
}

/// Parses a signed duration such as `-2 days` or `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        given: text.to_owned(),
    };
    let trimmed = text.trim();
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let rest = rest.trim_start();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(digits_end);
    if number.is_empty() {
        return Err(error());
    }
    let value: i64 = number.parse().map_err(|_| error())?;
    let per_unit_ms: i64 = match unit.trim() {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "y" | "year" | "years" => 365 * 86_400_000,
        _ => return Err(error()),
    };
    let ms = value.checked_mul(per_unit_ms).ok_or_else(error)?;
    Ok(Duration::milliseconds(if negative { -ms } else { ms }))
}

/// Formats a duration the way [`parse_duration`] reads it, in the largest unit
/// that divides it exactly.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.whole_milliseconds();
    let units: [(i128, &str); 5] = [
        (365 * 86_400_000, " years"),
        (86_400_000, " days"),
        (3_600_000, " h"),
        (60_000, " min"),
        (1_000, " s"),
    ];
    for (size, name) in units {
        if ms != 0 && ms % size == 0 {
            return format!("{}{name}", ms / size);
        }
    }
    format!("{ms} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_of_the_step_vocabulary_parses() {
        let cases = [
            ("500 ms", Duration::milliseconds(500)),
            ("15 s", Duration::seconds(15)),
            ("30 seconds", Duration::seconds(30)),
            ("1 second", Duration::seconds(1)),
            ("2 min", Duration::minutes(2)),
            ("1 h", Duration::hours(1)),
            ("-2 days", Duration::days(-2)),
            ("+10 years", Duration::days(3650)),
            ("-10years", Duration::days(-3650)),
            (" 7s ", Duration::seconds(7)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        for bad in [
            "",
            "days",
            "-",
            "1.5 s",
            "2 fortnights",
            "1 s extra",
            "99999999999999999 years",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err.given, bad);
        }
    }

    #[test]
    fn formatting_round_trips() {
        for d in [
            Duration::days(-2),
            Duration::milliseconds(1500),
            Duration::days(365 * 3),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
