//! Data sends: chunks, hex mode, prompts.

use std::time::Duration;

use super::*;

#[test]
fn data_send_binary_safe_in_chunks_with_size_query() {
    let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut d = Drive::new();
    let o = d.run(data_plan(&payload, None), |_, w| {
        let w = String::from_utf8_lossy(w);
        if w == "AT+CIPSEND?\r" {
            b"\r\n+CIPSEND: 1460\r\n\r\nOK\r\n".to_vec()
        } else if w.starts_with("AT+CIPSEND=") {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND OK\r\n".to_vec()
        }
    });
    assert!(o.passed(), "{o:?}");
    let w = &d.writes;
    assert_eq!(w[0], b"AT+CIPSEND?\r");
    assert_eq!(w[1], b"AT+CIPSEND=1460\r");
    assert_eq!(w[3], b"AT+CIPSEND=1460\r");
    assert_eq!(w[5], b"AT+CIPSEND=80\r");
    let sent: Vec<u8> = [&w[2], &w[4], &w[6]]
        .iter()
        .flat_map(|v| v.iter().copied())
        .collect();
    assert_eq!(sent, payload);
}

#[test]
fn data_send_skips_payload_echo_and_handles_quick_send() {
    let payload = b"\x10\x1a\r\nOK\r\n\x1b\x00".to_vec();
    let mut d = Drive::new();
    d.run(plan("AT"), |_, _| b"AT\r\r\nOK\r\n".to_vec()); // echo on
    // Quick-send mode (`AT+CIPQSEND=1`) answers `DATA ACCEPT:<len>` instead of `SEND OK`.
    let p = data_plan(&payload, Some(1460));
    let o = d.run(p, |i, w| match i {
        1 => {
            let mut v = w.to_vec();
            v.extend_from_slice(b"\r\n> ");
            v
        }
        // The modem echoes the payload, then accepts it.
        _ => {
            let mut v = w.to_vec();
            v.extend_from_slice(b"\r\nDATA ACCEPT:10\r\n");
            v
        }
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(o.lines, vec!["DATA ACCEPT:10"]);
}

#[test]
fn data_send_failure_is_reported() {
    let mut d = Drive::new();
    let o = d.run(data_plan(b"abc", Some(1460)), |i, _| {
        if i == 0 {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND FAIL\r\n".to_vec()
        }
    });
    assert!(matches!(o.failure, Some(Failure::Aborted { ref line, .. }) if line == "SEND FAIL"));
}

#[test]
fn no_prompt_times_out_with_a_clear_reason() {
    let mut d = Drive::new();
    let mut p = data_plan(b"abc", Some(1460));
    p.timeout = Duration::from_secs(1);
    let o = d.run(p, |_, _| Vec::new());
    // A silent modem is "no reply" (issue 10 point 3); one that answers something else
    // times out waiting for the prompt.
    assert!(
        matches!(&o.failure, Some(Failure::NoReply { command, .. }) if command == "AT+CIPSEND=3"),
        "{o:?}"
    );
    let mut d = Drive::new();
    let mut p = data_plan(b"abc", Some(1460));
    p.timeout = Duration::from_secs(1);
    let o = d.run(p, |_, _| b"\r\n+CSQ: 5,99\r\n".to_vec());
    assert_eq!(
        o.failure,
        Some(Failure::Timeout {
            waited: Duration::from_secs(1),
            waiting_for: "the `> ` prompt after `AT+CIPSEND=3`".into()
        })
    );
}

#[test]
fn hex_mode_refuses_ctrl_z_and_sends_hex_text() {
    let mut d = Drive::new();
    let mut p = data_plan(b"\x30\x1a", None);
    if let PlanAction::Data(dp) = &mut p.action {
        dp.hex = true;
    }
    let o = d.run(p.clone(), |_, _| Vec::new());
    assert!(
        matches!(o.failure, Some(Failure::Data { ref message }) if message.contains("byte 1 is 0x1A"))
    );
    let mut d = Drive::new();
    if let PlanAction::Data(dp) = &mut p.action {
        dp.payload = vec![0x30, 0x00, 0xff].into();
    }
    let o = d.run(p, |i, _| {
        if i == 0 {
            b"\r\n> ".to_vec()
        } else {
            b"\r\nSEND OK\r\n".to_vec()
        }
    });
    assert!(o.passed());
    assert_eq!(d.written(), vec!["AT+CIPSEND\r", "30 00 FF 1A"]);
}

#[test]
fn prompt_data_is_typed_after_the_prompt() {
    let mut d = Drive::new();
    let mut p = plan("AT+SMPUB=\"t\",5,0,0");
    p.prompt_data = Some(b"hello".to_vec().into());
    p.abort = default_aborts();
    let o = d.run(p, |i, _| match i {
        0 => b"\r\n> ".to_vec(),
        _ => b"\r\nOK\r\n".to_vec(),
    });
    assert!(o.passed(), "{o:?}");
    assert_eq!(d.written(), vec!["AT+SMPUB=\"t\",5,0,0\r", "hello"]);
}
