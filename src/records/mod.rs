//! Factory records beyond one station: each device record also goes to PostgreSQL and to an
//! MQTT topic, store-and-forward (issue 15).
//!
//! * [`Sinks`]: the sinks of a station (`--record-to URL`, repeatable). [`Sinks::push`]
//!   sends a record to each, bounded by the sink's timeout, and reports the sinks that are
//!   *behind* instead of failing; a sink that just failed is skipped for
//!   [`sink::RETRY_AFTER`] so a dead server never slows the line.
//! * [`push_file`]: store and forward — the JSONL report stays the source of truth and this
//!   sends a sink what it lacks (a database is asked; a broker's acknowledged records are in
//!   a [`ledger`] next to the JSONL). Idempotent: a record's id is its run plus its device.
//! * [`views`]: yield per recipe and day, failures by step, devices by firmware, from a file
//!   or a database, with the same rows.
//! * Sinks: [`pg`] (a small sync client on `postgres-protocol`, schema versioned in
//!   `schema_version`) and [`mqtt`] (QoS 1 on the crate's own codec).
//!
//! See `docs/records.md`.

pub mod forward;
pub mod ledger;
pub mod live;
pub mod mqtt;
pub mod pg;
pub mod record;
pub mod sink;
pub mod url;
pub mod views;

pub use forward::{PushSummary, push_file, push_missing, read_records};
pub use live::{Live, LiveSummary};
pub use record::{Record, RecordId};
pub use sink::{Delivery, Outcome, PushReport, Sink, SinkError, SinkErrorKind, SinkStatus, Sinks};
pub use url::SinkUrl;
pub use views::{Rows, View};

/// The default station name: the host name (`station` when it cannot be read).
pub fn default_station() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty() && !s.contains('\0'))
        .unwrap_or_else(|| "station".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_station_is_a_name() {
        let s = super::default_station();
        assert!(!s.is_empty() && !s.contains('\0'));
    }
}
