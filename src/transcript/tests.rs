//! Unit tests of the streaming transcript. The flush deadline is tested with instants handed
//! to [`Transcript::tick`], never with sleeps.

use super::*;

struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        let dir =
            std::env::temp_dir().join(format!("sim7k-transcript-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Temp(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("t.log")
    }
    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn secrets(values: &[&str]) -> Secrets {
    Secrets::from_values(values.iter().copied())
}

#[test]
fn redacts_raw_and_hex_forms_even_when_dripped() {
    let tmp = Temp::new("dripped");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    let mut vars = crate::recipe::vars::Vars::new(Default::default());
    vars.set(
        "pw",
        crate::recipe::vars::VarValue::Text("hunter2".into()),
        true,
    );
    t.set_secrets(vars.secret_forms());
    t.tx(b"AT+CSTT=\"nbiot\",\"user\",\"hunter2\"\r");
    for b in b"AT+CSTT=\"nbiot\",\"user\",\"hunter2\"\r\r\nOK\r\n" {
        t.rx(&[*b]);
    }
    t.tx(b"00 07 68 75 6E 74 65 72 32 1A");
    t.note("password is hunter2");
    t.flush().unwrap();
    let text = tmp.text();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("68 75 6E 74 65 72 32"), "{text}");
    assert_eq!(text.matches("***").count(), 4, "{text}");
    assert!(t.tail().iter().any(|l| l.contains("< AT+CSTT")));
}

/// Regression (issue 11 point 1): entries were written only at the end of the run.
#[test]
fn notes_reach_the_file_at_once_and_traffic_within_the_deadline() {
    let tmp = Temp::new("stream");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    t.tx(b"AT\r");
    t.rx(b"AT\r\r\nOK\r\n");
    t.note("step 1 `at` passed");
    let text = tmp.text();
    assert!(text.contains("> AT\\r"), "{text}");
    assert!(text.contains("< AT\\r\\r\\nOK\\r\\n"), "{text}");
    assert!(text.contains("# step 1 `at` passed"), "{text}");

    // Traffic without a note: in the buffer until the deadline, then in the file.
    t.tx(b"AT+CSQ\r");
    let due = t.next_flush().expect("an entry waits");
    assert!(!tmp.text().contains("AT+CSQ"));
    t.tick(due - Duration::from_millis(1));
    assert!(!tmp.text().contains("AT+CSQ"));
    t.tick(due);
    assert!(tmp.text().contains("> AT+CSQ\\r"), "{}", tmp.text());
    assert_eq!(t.next_flush(), None);
}

#[test]
fn a_partial_line_is_written_after_the_deadline_and_at_a_checkpoint() {
    let tmp = Temp::new("partial");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    t.rx(b"+CSQ: 2");
    let due = t.next_flush().expect("bytes wait");
    assert!(due <= Instant::now() + FLUSH_WITHIN);
    t.tick(due);
    assert!(tmp.text().contains("< +CSQ: 2\n"), "{}", tmp.text());
    t.rx(b"4,99\r\n\r\n> ");
    t.checkpoint();
    let text = tmp.text();
    assert!(text.contains("< 4,99\\r\\n\\r\\n\n"), "{text}");
    // The prompt has no line end: written at the step's end.
    assert!(text.ends_with("< > \n"), "{text}");
}

/// Regression (issue 11 point 5): a secret cut by a flush (a slow modem) is still hidden.
#[test]
fn a_secret_received_in_pieces_across_the_deadline_is_hidden() {
    let tmp = Temp::new("pieces");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    t.set_secrets(secrets(&["S3cr3t-XYZ"]));
    t.rx(b"pw S3cr3t-");
    t.tick(Instant::now() + FLUSH_WITHIN);
    let text = tmp.text();
    assert!(text.contains("< pw \n"), "{text}");
    assert!(!text.contains("S3cr"), "{text}");
    t.rx(b"XYZ ok\r\n");
    t.checkpoint();
    let text = tmp.text();
    assert!(text.contains("< *** ok\\r\\n"), "{text}");
    // A false start is written once it is clear.
    t.rx(b"S3c");
    t.checkpoint();
    assert!(tmp.text().ends_with("< S3c\n"), "{}", tmp.text());
}

#[test]
fn held_entries_are_written_at_release_with_the_secrets_known_then() {
    let tmp = Temp::new("held");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    t.note("before");
    t.hold();
    t.tx(b"AT+CCID\r");
    t.rx(b"AT+CCID\r\r\n8988211234567890123\r\n\r\nOK\r\n");
    t.note("captured");
    t.tick(Instant::now() + Duration::from_secs(10));
    t.checkpoint();
    assert_eq!(t.next_flush(), None);
    let text = tmp.text();
    assert!(
        !text.contains("CCID") && !text.contains("captured"),
        "{text}"
    );
    t.set_secrets(secrets(&["8988211234567890123"]));
    t.release();
    let text = tmp.text();
    assert!(text.contains("> AT+CCID\\r"), "{text}");
    assert!(text.contains("\\r\\n***\\r\\n"), "{text}");
    assert!(text.contains("# captured"), "{text}");
    assert!(!text.contains("898821"), "{text}");
}

/// Regression (issue 11 point 2): a full disk cut the transcript and the run passed.
#[test]
fn a_write_error_is_kept_and_names_the_file() {
    let mut t = Transcript::create(Path::new("/dev/full"), Instant::now()).unwrap();
    t.tx(b"AT\r");
    assert!(t.error().is_none(), "buffered: nothing written yet");
    t.note("step 1 passed");
    let e = t.error().expect("the write failed").clone();
    assert_eq!(e.path, Path::new("/dev/full"));
    assert_eq!(e.io_kind, io::ErrorKind::StorageFull);
    let shown = e.to_string();
    assert!(
        shown.starts_with("cannot write the transcript /dev/full:"),
        "{shown}"
    );
    // The tail goes on in memory; the error stays.
    t.tx(b"AT+CSQ\r");
    assert!(t.tail().iter().any(|l| l.contains("AT+CSQ")));
    assert_eq!(t.flush(), Err(e));
}

/// Regression (issue 11 point 10): control bytes in notes reached the file raw, and the
/// tail carried whole megabyte lines.
#[test]
fn notes_are_escaped_and_the_tail_is_short() {
    let tmp = Temp::new("escape");
    let mut t = Transcript::create(&tmp.file(), Instant::now()).unwrap();
    t.note("say: \u{1b}[2J\u{1b}]0;owned\u{7}\nsecond line");
    t.rx(&vec![b'x'; 1 << 20]);
    t.flush().unwrap();
    let text = tmp.text();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:.200}"
    );
    assert!(
        text.contains("# say: \\x1b[2J\\x1b]0;owned\\x07\\nsecond line\n"),
        "{text:.200}"
    );
    assert_eq!(text.lines().count(), 2);
    let tail = t.tail();
    let last = tail.last().unwrap();
    assert!(last.len() < SHOWN_CHARS + 60, "{}", last.len());
    assert!(last.ends_with("bytes more"), "{last}");
}

#[test]
fn a_memory_transcript_keeps_only_the_tail() {
    let mut t = Transcript::memory(Instant::now());
    for i in 0..20 {
        t.tx(format!("AT+X={i}\r").as_bytes());
    }
    assert_eq!(t.tail().len(), TAIL_LINES);
    assert_eq!(t.next_flush(), None);
    assert!(t.path().is_none());
    assert!(t.flush().is_ok());
}
