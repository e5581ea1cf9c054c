//! Engine events into [`JobEvent`]s: traffic lines, MQTT messages (recorded, printed, handed
//! to the running step's `on_message` hook or kept for the next one).

use super::outcome::MessageRecord;
use super::{Job, JobEvent, MAX_KEPT, ReceivedMessage};
use crate::engine::Event;
use crate::engine::mqtt::Message;
use crate::util::escape::{SHOWN_CHARS, escape_text, shorten};

/// Most messages kept for a hook that has not started yet.
const MAX_PENDING: usize = 10_000;

impl Job<'_> {
    /// Take the engine's events: traffic lines (held back while a step captures secrets) and
    /// messages.
    pub(super) fn flush_engine_events(&mut self) {
        let events: Vec<Event> = self.session.drain_events().collect();
        for ev in events {
            let line = match ev {
                Event::Sent(l) => format!("> {l}"),
                Event::SentData(n) => format!("> [{n} data bytes]"),
                Event::Echo(l) => format!("< {l} (echo)"),
                Event::Response(l) => format!("< {l}"),
                Event::Unsolicited { line, urc } => match urc {
                    Some(u) => format!("! {line} ({})", u.describe()),
                    None => format!("! {line}"),
                },
                Event::Prompt => "< >".to_string(),
                Event::Data(d) => format!("< [{} bytes received]", d.len()),
                Event::Message(m) => {
                    let line = format!(
                        "MQTT message on `{}` ({} bytes, QoS {})",
                        m.topic,
                        m.payload.len(),
                        m.qos
                    );
                    self.receive(m);
                    line
                }
                Event::Retry { attempt, failure } => {
                    format!("attempt {attempt} failed ({failure}); retrying")
                }
                Event::Poll { polls } => format!("poll {polls}: not yet"),
                Event::Boot(l) => format!("! {l} (modem finished booting)"),
                Event::Note(n) => format!("note: {n}"),
                Event::Tls(t) => {
                    // TLS records and the decrypted packets are not in the raw bytes the
                    // transcript keeps: they go to it as notes too.
                    let line = t.to_string();
                    let note = self.traffic_line(&line);
                    self.events.push_back(JobEvent::Note(note));
                    line
                }
            };
            match self.held_traffic.as_mut() {
                Some(held) => held.push(line),
                None => {
                    let line = self.traffic_line(&line);
                    self.events.push_back(JobEvent::Traffic(line));
                }
            }
        }
    }

    /// A traffic line for output: secrets replaced, then escaped and shortened.
    pub(super) fn traffic_line(&self, line: &str) -> String {
        shorten(&self.secrets.redact_str(line), SHOWN_CHARS)
    }

    /// Multi-line text (a `say:`): secrets replaced, each line escaped.
    pub(super) fn shown_lines(&self, text: &str) -> String {
        self.secrets
            .redact_str(text)
            .split('\n')
            .map(escape_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A message from the broker: record it, print it (unless the wait is `quiet`), hand
    /// it on.
    fn receive(&mut self, m: Message) {
        let record = MessageRecord::of(&m, &self.secrets);
        if self.messages.len() < MAX_KEPT {
            self.messages.push(record.clone());
        } else {
            self.omitted += 1;
        }
        if self.print_messages {
            let shown = Message {
                topic: self.secrets.redact_str(&m.topic).into_owned(),
                payload: self.secrets.redact(&m.payload).into_owned(),
                qos: m.qos,
                retain: m.retain,
            };
            self.events.push_back(JobEvent::Message(ReceivedMessage {
                message: shown,
                record,
            }));
        }
        self.dispatch(m);
    }

    /// Hand a message to the running step's hook, or keep it for the next hook.
    pub(super) fn dispatch(&mut self, m: Message) {
        let Some(hook) = self.hook.clone() else {
            if self.pending_messages.len() < MAX_PENDING {
                self.pending_messages.push(m);
            }
            return;
        };
        let result = match self.scripts.as_deref_mut() {
            Some(host) => host.on_message(&hook, &m, &mut self.vars),
            None => Err("this build has no script support".to_string()),
        };
        self.refresh_secrets();
        match result {
            Ok(lines) => {
                for l in lines {
                    let l = self.shown(&l);
                    self.say(l, "on_message");
                }
            }
            Err(e) => {
                self.hook_error.get_or_insert(e);
            }
        }
    }
}
