//! The one timer table: every instant the engine wants to be woken at, in one place.
//! [`Session::poll`](super::Session::poll) waits until the earliest of them.

use std::time::Instant;

/// The engine's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The step's or the recipe's deadline (the tightest of both).
    Deadline,
    /// The step's next move: the first attempt after `delay`, a retry after
    /// `retry_delay`, the next `until` poll after `interval`.
    Pause,
    /// The command in flight times out.
    Exchange,
    /// A `wait` step's time is up.
    Wait,
    /// An MQTT wait's time is up (its timeout or listening `duration`).
    MqttWait,
    /// The MQTT session's next PINGREQ is due, or the PINGRESP it waits for is late.
    KeepAlive,
    /// The power-on (or `AT+CFUN=…,1`) boot window closes.
    Boot,
    /// The echo of typed data paused long enough to be over.
    Echo,
    /// Pushed data paused long enough to settle a packet waiting for what follows it.
    Settle,
    /// A `tls:` step's time is up (the handshake, or `close_notify` going out).
    Tls,
}

const COUNT: usize = 10;

impl Timer {
    fn index(self) -> usize {
        match self {
            Timer::Deadline => 0,
            Timer::Pause => 1,
            Timer::Exchange => 2,
            Timer::Wait => 3,
            Timer::MqttWait => 4,
            Timer::KeepAlive => 5,
            Timer::Boot => 6,
            Timer::Echo => 7,
            Timer::Settle => 8,
            Timer::Tls => 9,
        }
    }
}

/// Instants per [`Timer`].
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arm (or re-arm) a timer.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(slot) = self.at.get_mut(timer.index()) {
            *slot = Some(at);
        }
    }

    /// Disarm a timer.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.at.get_mut(timer.index()) {
            *slot = None;
        }
    }

    /// When a timer fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at.get(timer.index()).copied().flatten()
    }

    /// True when the timer is armed and its instant has come.
    pub fn expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| now >= t)
    }

    /// The earliest armed instant.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Disarm the timers that belong to one step (not the exchange in flight, which may
    /// be the link's, nor the keep-alive and boot window).
    pub fn stop_step(&mut self) {
        for t in [
            Timer::Deadline,
            Timer::Pause,
            Timer::Wait,
            Timer::MqttWait,
            Timer::Tls,
        ] {
            self.stop(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_wins() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Wait, now + Duration::from_secs(10));
        t.set(Timer::KeepAlive, now + Duration::from_secs(2));
        t.set(Timer::Deadline, now + Duration::from_secs(5));
        assert_eq!(t.next(), Some(now + Duration::from_secs(2)));
        t.stop(Timer::KeepAlive);
        assert_eq!(t.next(), Some(now + Duration::from_secs(5)));
        assert!(t.expired(Timer::Deadline, now + Duration::from_secs(5)));
        t.set(Timer::Exchange, now);
        t.stop_step();
        assert_eq!(t.next(), Some(now));
    }
}
