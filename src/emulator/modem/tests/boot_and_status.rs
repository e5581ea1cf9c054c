//! Framing, echo, boot, identity and status commands.

use std::time::{Duration, Instant};

use super::*;
use crate::emulator::config::{BootMode, EmulatorConfig, Latency, Registration};

// ----- framing, echo, boot -------------------------------------------------------------------

/// Regression (issue 10 point 14): `+CFUN: 1` comes before `+CPIN: READY` and `SMS Ready`
/// in an autobaud boot too (TinyGSM #717 log); the old emulator left it out.
#[test]
fn autobaud_holds_boot_urcs_until_first_at() {
    let mut h = H::new(EmulatorConfig::default());
    assert!(h.out().is_empty(), "autobaud prints nothing at power-on");
    let o = h.cmd("AT");
    assert_eq!(
        show(&o),
        show(b"AT\r\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    assert_eq!(show(&h.cmd("AT")), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn fixed_baud_prints_boot_urcs_at_start() {
    let t = Instant::now();
    let mut m = Modem::new(
        EmulatorConfig {
            boot: BootMode::Fixed(115200),
            ..EmulatorConfig::default()
        },
        t,
    );
    assert_eq!(
        show(&m.take_output(t)),
        show(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
    );
    m.feed(b"AT\r", t);
    assert_eq!(show(&m.take_output(t)), show(b"AT\r\r\nOK\r\n"));
}

#[test]
fn boot_latency_ignores_input_until_ready() {
    let t = Instant::now();
    let mut m = Modem::new(
        EmulatorConfig {
            latency: Latency {
                boot: Duration::from_secs(2),
                ..Latency::zero()
            },
            ..EmulatorConfig::default()
        },
        t,
    );
    m.feed(b"AT\r", t + Duration::from_secs(1));
    assert!(m.take_output(t + Duration::from_secs(1)).is_empty());
    assert_eq!(m.next_deadline(), Some(t + Duration::from_secs(2)));
    m.feed(b"AT\r", t + Duration::from_secs(3));
    assert!(
        m.take_output(t + Duration::from_secs(3))
            .starts_with(b"AT\r\r\nOK\r\n")
    );
}

#[test]
fn echo_is_raw_and_ate0_line_is_still_echoed() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    assert_eq!(show(&h.send(b"ATE0\r\n")), show(b"ATE0\r\n\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("AT")), show(b"\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("ATE1")), show(b"\r\nOK\r\n"));
    assert_eq!(show(&h.cmd("at")), show(b"at\r\r\nOK\r\n"));
}

#[test]
fn echo_byte_by_byte_and_backspace() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    let mut all = Vec::new();
    for b in b"ATI\x08\x08T\r" {
        all.extend(h.send(&[*b]));
    }
    assert_eq!(show(&all), show(b"ATI\x08\x08T\r\r\nOK\r\n"));
}

#[test]
fn verbose_off_gives_numeric_codes() {
    let mut h = H::quiet();
    h.expect("ATV0", b"0\r");
    h.expect("AT+CSQ", b"+CSQ: 24,99\r\n0\r");
    h.expect("AT+NOPE", b"4\r");
    h.expect("ATV1", b"\r\nOK\r\n");
}

#[test]
fn cmee_modes() {
    let mut h = H::quiet();
    // Not allowed in IP INITIAL.
    h.expect("AT+CIICR", b"\r\nERROR\r\n");
    h.expect("AT+CMEE=1", b"\r\nOK\r\n");
    h.expect("AT+CIICR", b"\r\n+CME ERROR: 3\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
    h.expect("AT+CIICR", b"\r\n+CME ERROR: operation not allowed\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 2\r\n\r\nOK\r\n");
    // Unknown commands answer plain ERROR whatever CMEE says.
    h.expect("AT+FOOBAR", b"\r\nERROR\r\n");
    h.expect("AT+CMEE=3", b"\r\n+CME ERROR: Incorrect parameters\r\n");
}

#[test]
fn quiet_mode_suppresses_result_codes() {
    let mut h = H::quiet();
    h.expect("ATQ1", b"");
    h.expect("AT+CSQ", b"\r\n+CSQ: 24,99\r\n");
    h.expect("ATQ0", b"\r\nOK\r\n");
}

#[test]
fn lines_without_at_are_ignored_and_case_is_free() {
    let mut h = H::quiet();
    h.expect("hello", b"");
    h.expect("", b"");
    h.expect("xxAT", b"\r\nOK\r\n");
    h.expect("aT+cSq", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
}

#[test]
fn a_slash_repeats_last_line() {
    let mut h = H::quiet();
    h.expect("AT+CSQ", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    assert_eq!(show(&h.send(b"A/")), show(b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n"));
}

#[test]
fn line_length_limit() {
    let mut h = H::quiet();
    // 559 characters in total: accepted.
    let ok = format!(
        "AT{}",
        "E0".repeat(39 - 1) + " ".repeat(559 - 2 - 76).as_str()
    );
    assert_eq!(ok.len(), 559);
    h.expect(&ok, b"\r\nOK\r\n");
    // 560: rejected and nothing runs (echo stays on after the failed ATE1).
    let long = format!("ATE1;+CMEE=2{}", " ".repeat(560 - 12));
    assert_eq!(long.len(), 560);
    h.expect(&long, b"\r\nERROR\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 0\r\n\r\nOK\r\n");
    // Too many commands.
    h.expect(&format!("AT{}", "E0;".repeat(40)), b"\r\nERROR\r\n");
}

#[test]
fn chained_commands_stop_at_the_first_error() {
    let mut h = H::quiet();
    h.expect("AT+CMEE=1;+CSQ", b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n");
    h.expect("AT+CMEE=0;+BOGUS;+CMEE=2", b"\r\nERROR\r\n");
    h.expect("AT+CMEE?", b"\r\n+CMEE: 0\r\n\r\nOK\r\n");
}

// ----- identity and status ---------------------------------------------------------------------

#[test]
fn identity_commands() {
    let mut cfg = EmulatorConfig {
        echo: false,
        ..EmulatorConfig::default()
    };
    cfg.identity.imei = "490154203237518".into();
    cfg.identity.iccid = "8944500102198304826F".into();
    cfg.identity.imsi = "001010123456789".into();
    cfg.identity.ati = "SIM7000G R1529".into();
    cfg.identity.revision = "1529B11SIM7000G".into();
    cfg.identity.rssi = 17;
    let mut h = H::new(cfg);
    h.cmd("AT");
    h.expect("ATI", b"\r\nSIM7000G R1529\r\n\r\nOK\r\n");
    h.expect("AT+CGMR", b"\r\nRevision:1529B11SIM7000G\r\n\r\nOK\r\n");
    h.expect("AT+GMR", b"\r\nRevision:1529B11SIM7000G\r\n\r\nOK\r\n");
    h.expect("AT+GSN", b"\r\n490154203237518\r\n\r\nOK\r\n");
    h.expect("AT+CGSN", b"\r\n490154203237518\r\n\r\nOK\r\n");
    h.expect("AT+CCID", b"\r\n8944500102198304826F\r\n\r\nOK\r\n");
    h.expect("AT+CIMI", b"\r\n001010123456789\r\n\r\nOK\r\n");
    h.expect("AT+CGMI", b"\r\nSIMCOM_Ltd\r\n\r\nOK\r\n");
    h.expect("AT+CPIN?", b"\r\n+CPIN: READY\r\n\r\nOK\r\n");
    h.expect("AT+CSQ", b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n");
    h.expect(
        "AT+COPS?",
        b"\r\n+COPS: 0,0,\"Far EasTone\",9\r\n\r\nOK\r\n",
    );
    h.expect("AT&W", b"\r\nOK\r\n");
    h.expect("ATZ", b"\r\nERROR\r\n");
}

#[test]
fn radio_settings_read_back() {
    let mut h = H::quiet();
    h.expect("AT+CNMP=38", b"\r\nOK\r\n");
    h.expect("AT+CNMP?", b"\r\n+CNMP: 38\r\n\r\nOK\r\n");
    h.expect("AT+CNMP=7", b"\r\nERROR\r\n");
    h.expect("AT+CMNB=2", b"\r\nOK\r\n");
    h.expect("AT+CMNB?", b"\r\n+CMNB: 2\r\n\r\nOK\r\n");
    h.expect("AT+CBANDCFG=\"NB-IOT\",8,20", b"\r\nOK\r\n");
    let o = h.cmds("AT+CBANDCFG?");
    assert!(o.starts_with("\r\n+CBANDCFG: \"CAT-M\",1,2,3"), "{o:?}");
    assert!(
        o.ends_with("\r\n+CBANDCFG: \"NB-IOT\",8,20\r\n\r\nOK\r\n"),
        "{o:?}"
    );
    h.expect("AT+CPSMS=1,,,\"00100001\",\"00000101\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CPSMS?",
        b"\r\n+CPSMS: 1,,,\"00100001\",\"00000101\"\r\n\r\nOK\r\n",
    );
    h.expect("AT+CPSMS=1,,,\"2\"", b"\r\nERROR\r\n");
    h.expect("AT+CEDRXS=1,5,\"0101\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CEDRXS?",
        b"\r\n+CEDRXS: 4,\"0000\"\r\n+CEDRXS: 5,\"0101\"\r\n\r\nOK\r\n",
    );
    h.expect("AT+IPR=115200", b"\r\nOK\r\n");
    h.expect("AT+IPR?", b"\r\n+IPR: 115200\r\n\r\nOK\r\n");
    h.expect("AT+IPR=12345", b"\r\nERROR\r\n");
    h.expect("AT+CLTS=1", b"\r\nOK\r\n");
    h.expect("AT+CLTS?", b"\r\n+CLTS: 1\r\n\r\nOK\r\n");
    let o = h.cmds("AT+CPSI?");
    assert!(
        o.starts_with("\r\n+CPSI: LTE NB-IOT,Online,466-01,0xA411,"),
        "{o:?}"
    );
    h.expect("AT+CGNAPN", b"\r\n+CGNAPN: 1,\"nbiot\"\r\n\r\nOK\r\n");
}

/// `AT+CAPNMODE` (reference: bearer commands drivers mix in) used to answer ERROR.
#[test]
fn capnmode_reads_back() {
    let mut h = H::quiet();
    h.expect("AT+CAPNMODE=0", b"\r\nOK\r\n");
    h.expect("AT+CAPNMODE?", b"\r\n+CAPNMODE: 0\r\n\r\nOK\r\n");
    h.expect("AT+CAPNMODE=2", b"\r\nERROR\r\n");
}

#[test]
fn cgdcont_several_cids() {
    let mut h = H::quiet();
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"nbiot\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=3,\"IPV4V6\",\"three\"", b"\r\nOK\r\n");
    h.expect("AT+CGDCONT=1,\"IP\",\"one\"", b"\r\nOK\r\n");
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"one\",\"0.0.0.0\",0,0,0,0\r\n+CGDCONT: 3,\"IPV4V6\",\"three\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=3", b"\r\nOK\r\n");
    h.expect(
        "AT+CGDCONT?",
        b"\r\n+CGDCONT: 1,\"IP\",\"one\",\"0.0.0.0\",0,0,0,0\r\n\r\nOK\r\n",
    );
    h.expect("AT+CGDCONT=99,\"IP\",\"x\"", b"\r\nERROR\r\n");
    h.expect("AT+CGDCONT=2,\"PPP\",\"x\"", b"\r\nERROR\r\n");
}

#[test]
fn registration_searches_for_n_polls() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_polls: 2,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CGATT?", b"\r\n+CGATT: 0\r\n\r\nOK\r\n");
    h.expect("AT+COPS?", b"\r\n+COPS: 0\r\n\r\nOK\r\n");
    h.expect("AT+CPSI?", b"\r\n+CPSI: NO SERVICE,Online\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CGREG?", b"\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CGATT?", b"\r\n+CGATT: 1\r\n\r\nOK\r\n");
}

#[test]
fn registration_searches_for_a_duration_with_urcs() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_for: Duration::from_secs(5),
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CEREG=1", b"\r\nOK\r\n");
    h.expect("AT+CGREG=2", b"\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 1,2\r\n\r\nOK\r\n");
    assert!(h.advance(Duration::from_secs(2)).is_empty());
    let o = h.advance(Duration::from_secs(3));
    assert_eq!(
        show(&o),
        show(b"\r\n+CGREG: 1,\"A411\",\"0E3D6C0\",9\r\n\r\n+CEREG: 1\r\n")
    );
    h.expect(
        "AT+CGREG?",
        b"\r\n+CGREG: 2,1,\"A411\",\"0E3D6C0\",9\r\n\r\nOK\r\n",
    );
}

#[test]
fn nbiot_sim_keeps_creg_unregistered() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            nbiot_sim: true,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CREG?", b"\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    h.expect("AT+CGREG?", b"\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
}

#[test]
fn clts_reports_network_time_on_registration() {
    let mut h = H::new(EmulatorConfig {
        echo: false,
        registration: Registration {
            searching_polls: 1,
            ..Registration::default()
        },
        ..EmulatorConfig::default()
    });
    h.cmd("AT");
    h.expect("AT+CLTS=1", b"\r\nOK\r\n");
    let o = h.cmds("AT+CEREG?");
    assert!(
        o.starts_with("\r\n+CEREG: 0,2\r\n\r\nOK\r\n\r\nDST: 0\r\n\r\n*PSUTTZ: "),
        "DST comes before *PSUTTZ (TinyGSM #717, the AWS log): {o:?}"
    );
    assert!(o.ends_with("\",\"+04\",0\r\n"), "{o:?}");
}

#[test]
fn cfun_radio_off_and_on() {
    let mut h = H::quiet();
    h.bring_up();
    h.expect(
        "AT+CFUN=0",
        b"\r\nOK\r\n\r\n+CPIN: NOT READY\r\n\r\n+PDP: DEACT\r\n",
    );
    assert_eq!(h.state(), "PDP DEACT");
    h.expect("AT+CFUN?", b"\r\n+CFUN: 0\r\n\r\nOK\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,0\r\n\r\nOK\r\n");
    h.expect("AT+CSQ", b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    h.expect("AT+CPIN?", b"\r\nERROR\r\n");
    h.expect("AT+CFUN=1", b"\r\nOK\r\n\r\n+CPIN: READY\r\n");
    h.expect("AT+CEREG?", b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    h.expect("AT+CIPSHUT", b"\r\nSHUT OK\r\n");
    h.bring_up();
}

#[test]
fn cfun_1_1_reboots_and_resets_state() {
    let mut h = H::new(EmulatorConfig::default());
    h.cmd("AT");
    h.expect("ATE0", b"ATE0\r\r\nOK\r\n");
    h.expect("AT+CMEE=2", b"\r\nOK\r\n");
    h.expect("AT+CNMP=38", b"\r\nOK\r\n");
    h.expect("AT+IPR=115200", b"\r\nOK\r\n");
    let id = h.connect();
    h.expect(
        "AT+CFUN=1,1",
        b"\r\nOK\r\n\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n",
    );
    assert_eq!(h.reqs(), vec![NetRequest::Close { id }]);
    // Echo back on, CMEE back to 0, IP INITIAL; CNMP (AUTO_SAVE) survives.
    assert_eq!(
        show(&h.cmd("AT+CMEE?")),
        show(b"AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n")
    );
    h.expect("ATE0", b"ATE0\r\r\nOK\r\n");
    assert_eq!(h.state(), "IP INITIAL");
    h.expect("AT+CNMP?", b"\r\n+CNMP: 38\r\n\r\nOK\r\n");
    // Events of the old connection are ignored.
    assert!(
        h.net(NetEvent::Received {
            id,
            data: b"late".to_vec()
        })
        .is_empty()
    );
}

#[test]
fn power_down() {
    let mut h = H::quiet();
    h.expect("AT+CPOWD=1", b"\r\nNORMAL POWER DOWN\r\n");
    h.expect("AT", b"");
    assert!(h.m.is_silent());
}
