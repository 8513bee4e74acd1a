//! The values of the parameters every write takes and Elasticsearch parses strictly, even
//! where a single node has nothing to do with them: `timeout` (a time value) and
//! `wait_for_active_shards` (`all`, `index-setting` or a count). A bad one is refused in
//! Elasticsearch's words before anything is written, as `TimeValue.parseTimeValue` and
//! `ActiveShardCount.parseString` refuse it.

use std::time::Duration;

use crate::es::EsError;
use crate::input::params::Params;

/// The first bad value. Both parsers throw `IllegalArgumentException`.
pub(crate) fn refusal(params: &Params) -> Option<EsError> {
    if let Some(value) = params.get("timeout")
        && let Some(reason) = time_value_refusal("timeout", value)
    {
        return Some(EsError::illegal_argument(reason));
    }
    let count = params.get("wait_for_active_shards")?;
    match count {
        "all" | "index-setting" => None,
        n if n.parse::<i32>().is_ok_and(|n| n >= -1) => None,
        n if n.parse::<i32>().is_ok() => Some(EsError::illegal_argument(
            "shard count cannot be a negative value",
        )),
        n => Some(EsError::illegal_argument(format!(
            "cannot parse ActiveShardCount[{n}]"
        ))),
    }
}

/// `TimeValue.parseTimeValue`: `value` as a duration (`-1` as `None`: no limit), or its
/// refusal in Elasticsearch's words.
pub(crate) fn time_value(name: &str, value: &str) -> Result<Option<Duration>, EsError> {
    if let Some(reason) = time_value_refusal(name, value) {
        return Err(EsError::illegal_argument(reason));
    }
    let normalized = value.trim().to_ascii_lowercase();
    // Nanoseconds per unit; longest suffix first (`ms` before `s`, `nanos` before `s`).
    const UNITS: [(&str, u64); 7] = [
        ("nanos", 1),
        ("micros", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    for (unit, nanos) in UNITS {
        if let Some(n) = normalized.strip_suffix(unit) {
            return Ok(match n.trim().parse::<i64>() {
                Ok(-1) => None,
                Ok(n) => Some(Duration::from_nanos((n as u64).saturating_mul(nanos))),
                // The refusal above let only a number through; should it ever differ, a refusal.
                Err(_) => {
                    return Err(EsError::illegal_argument(format!(
                        "failed to parse [{value}]"
                    )));
                }
            });
        }
    }
    // A bare `-1` or `0`, the only values without a unit the refusal lets through.
    Ok((normalized != "-1").then_some(Duration::ZERO))
}

/// `TimeValue.parseTimeValue`'s refusal of `value` for setting `name`, if it refuses it.
fn time_value_refusal(name: &str, value: &str) -> Option<String> {
    let normalized = value.trim().to_ascii_lowercase();
    let number = ["nanos", "micros", "ms", "s", "m", "h", "d"]
        .iter()
        .find_map(|unit| normalized.strip_suffix(unit));
    match number.map(str::trim) {
        Some(n) if n.parse::<i64>().is_ok_and(|n| n >= -1) => None,
        Some(n) if n.parse::<i64>().is_ok() => Some(format!(
            "failed to parse setting [{name}] with value [{value}] as a time value: negative \
             durations are not supported"
        )),
        Some(n) if n.parse::<f64>().is_ok() => Some(format!(
            "failed to parse [{value}], fractional time values are not supported"
        )),
        Some(_) => Some(format!("failed to parse [{value}]")),
        None if normalized.trim_start_matches('-').trim_start_matches('0') == "1"
            && normalized.starts_with('-') =>
        {
            None
        }
        None if !normalized.is_empty() && normalized.bytes().all(|b| b == b'0') => None,
        None => Some(format!(
            "failed to parse setting [{name}] with value [{value}] as a time value: unit is \
             missing or unrecognized"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason of the refusal, which is always `illegal_argument_exception`.
    fn refused(query: &str) -> Option<String> {
        refusal(&Params::parse(query)).map(|e| {
            assert_eq!(e.exception, crate::es::Exception::IllegalArgument);
            e.reason
        })
    }

    #[test]
    fn time_values_and_shard_counts_are_refused_as_elasticsearch_refuses_them() {
        for fine in [
            "timeout=1m",
            "timeout=30s",
            "timeout=-1",
            "timeout=0",
            "timeout=100ms",
        ] {
            assert_eq!(refused(fine), None, "{fine}");
        }
        // "bogus" ends in "s": a number of seconds that is not a number.
        assert_eq!(
            refused("timeout=bogus"),
            Some("failed to parse [bogus]".into())
        );
        assert_eq!(
            refused("timeout=bogux"),
            Some(
                "failed to parse setting [timeout] with value [bogux] as a time value: unit is \
                 missing or unrecognized"
                    .into()
            )
        );
        assert_eq!(
            refused("timeout=1.5s"),
            Some("failed to parse [1.5s], fractional time values are not supported".into())
        );
        for fine in ["all", "index-setting", "1", "2"] {
            assert_eq!(refused(&format!("wait_for_active_shards={fine}")), None);
        }
        assert_eq!(
            refused("wait_for_active_shards=bogus"),
            Some("cannot parse ActiveShardCount[bogus]".into())
        );
    }
}
