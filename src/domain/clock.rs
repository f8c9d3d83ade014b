//! The one clock: times in milliseconds, the precision both backends keep
//! exactly, so a timestamp reads back as it was written.

/// Now, to the millisecond.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
