//! The module's state: power, settings (volatile and saved), the TCP/IP application, the
//! app bearer, what the module is busy with and what it is reading.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::super::config::{BootMode, EmulatorConfig};
use super::{ConnId, sm};

/// Single-connection TCP/IP application states (`STATE: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpState {
    Initial,
    Start,
    Config,
    GprsAct,
    Status,
    TcpConnecting,
    ConnectOk,
    TcpClosed,
    PdpDeact,
}

impl IpState {
    pub(super) fn text(self) -> &'static str {
        match self {
            IpState::Initial => "IP INITIAL",
            IpState::Start => "IP START",
            IpState::Config => "IP CONFIG",
            IpState::GprsAct => "IP GPRSACT",
            IpState::Status => "IP STATUS",
            IpState::TcpConnecting => "TCP CONNECTING",
            IpState::ConnectOk => "CONNECT OK",
            IpState::TcpClosed => "TCP CLOSED",
            IpState::PdpDeact => "PDP DEACT",
        }
    }

    /// The PDP context of the CIP application is up.
    pub(super) fn context_active(self) -> bool {
        matches!(
            self,
            IpState::GprsAct
                | IpState::Status
                | IpState::TcpConnecting
                | IpState::ConnectOk
                | IpState::TcpClosed
        )
    }
}

/// Power state of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Power {
    Booting,
    On,
    Off,
}

/// Volatile settings, reset by a reboot.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) echo: bool,
    pub(super) verbose: bool,
    pub(super) quiet: bool,
    pub(super) cmee: u8,
    pub(super) creg_n: u8,
    pub(super) cgreg_n: u8,
    pub(super) cereg_n: u8,
    pub(super) cfun: u8,
    pub(super) attached: bool,
    pub(super) clts: bool,
    pub(super) cipqsend: bool,
    pub(super) ciphead: bool,
    pub(super) cipsrip: bool,
    pub(super) cipshowtp: bool,
    pub(super) cipsprt: u8,
    pub(super) cipsendhex: bool,
    pub(super) ciprxget: u8,
    pub(super) ciptka: (u8, u32, u32, u8),
    pub(super) ciprdtimer: (u32, u32),
    pub(super) apn: (String, String, String),
    pub(super) cgact: bool,
    pub(super) smpubhex: bool,
    /// `AT+CAPNMODE`: 0 = CSTT/SAPBR use the APN the network hands out.
    pub(super) capnmode: u8,
}

impl Settings {
    pub(super) fn new(cfg: &EmulatorConfig, nv: &Stored) -> Settings {
        Settings {
            echo: cfg.echo,
            verbose: true,
            quiet: false,
            cmee: cfg.cmee.min(2),
            creg_n: 0,
            cgreg_n: 0,
            cereg_n: 0,
            cfun: 1,
            attached: true,
            clts: nv.clts_saved,
            cipqsend: false,
            ciphead: false,
            cipsrip: false,
            cipshowtp: false,
            cipsprt: 1,
            cipsendhex: false,
            ciprxget: 0,
            ciptka: (0, 7200, 75, 9),
            ciprdtimer: (2000, 3500),
            apn: ("CMNET".into(), String::new(), String::new()),
            cgact: true,
            smpubhex: false,
            capnmode: 1,
        }
    }
}

/// Settings that survive a reboot (AUTO_SAVE commands, `AT&W`).
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) ipr: u32,
    pub(super) cnmp: u8,
    pub(super) cmnb: u8,
    pub(super) bands_catm: Vec<u16>,
    pub(super) bands_nb: Vec<u16>,
    pub(super) cpsms: (u8, String, String),
    pub(super) cedrxs: [(u8, String); 2],
    pub(super) cgdcont: Vec<(u8, String, String)>,
    pub(super) clts_saved: bool,
}

impl Stored {
    pub(super) fn new(cfg: &EmulatorConfig) -> Stored {
        Stored {
            ipr: match cfg.boot {
                BootMode::Autobaud => 0,
                BootMode::Fixed(r) => r,
            },
            cnmp: 2,
            cmnb: 3,
            bands_catm: vec![
                1, 2, 3, 4, 5, 8, 12, 13, 14, 18, 19, 20, 25, 26, 27, 28, 66, 85,
            ],
            bands_nb: vec![1, 2, 3, 4, 5, 8, 12, 13, 18, 19, 20, 25, 26, 28, 66, 71, 85],
            cpsms: (0, "00000001".into(), "00000001".into()),
            cedrxs: [(0, "0000".into()), (0, "0000".into())],
            cgdcont: vec![(1, "IP".into(), cfg.identity.network_apn.clone())],
            clts_saved: false,
        }
    }
}

/// The CIP application's single connection.
#[derive(Debug, Clone)]
pub(super) struct TcpConn {
    pub(super) id: ConnId,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) peer: Option<SocketAddr>,
    /// Established and reported (`CONNECT OK`).
    pub(super) open: bool,
    /// The socket is gone (closed by either side or failed).
    pub(super) gone: bool,
    pub(super) requested_at: Instant,
    /// Manual-mode receive buffer (and early data before CONNECT OK).
    pub(super) rx: VecDeque<u8>,
}

/// TCP/IP application state.
#[derive(Debug, Clone)]
pub(super) struct Ip {
    pub(super) state: IpState,
    pub(super) conn: Option<TcpConn>,
    pub(super) tx_total: u64,
    pub(super) acked: u64,
    /// The bytes of the send in progress reached the peer's TCP stack (its `SEND OK` is
    /// only waiting for the configured latency).
    pub(super) send_delivered: bool,
}

impl Ip {
    pub(super) fn new() -> Ip {
        Ip {
            state: IpState::Initial,
            conn: None,
            tx_total: 0,
            acked: 0,
            send_delivered: false,
        }
    }
}

/// `AT+CNACT` application bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppPdp {
    Inactive,
    Activating,
    Active,
}

/// What the module is busy with (input is echoed and dropped meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Busy {
    Ciicr,
    Send {
        id: ConnId,
        len: usize,
    },
    Sm(sm::SmWait),
    /// Never answers (SMCONN hang fault).
    Hang,
}

/// What the module is reading from the host.
#[derive(Debug, Clone)]
pub(super) enum Input {
    Line(Vec<u8>),
    Payload(Payload),
}

#[derive(Debug, Clone)]
pub(super) enum PayloadKind {
    /// `AT+CIPSEND`: until Ctrl-Z, ESC cancels.
    CipVariable,
    /// `AT+CIPSEND=<n>`: exactly n bytes.
    CipFixed(usize),
    /// `AT+SMPUB`: exactly n bytes.
    SmPub {
        topic: String,
        qos: u8,
        retain: bool,
        want: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Payload {
    pub(super) kind: PayloadKind,
    pub(super) hex: bool,
    pub(super) nibble: Option<u8>,
    pub(super) buf: Vec<u8>,
}

/// Registration progress.
#[derive(Debug, Clone)]
pub(super) struct Reg {
    pub(super) since: Instant,
    pub(super) polls: u32,
    /// Last reported stat for CREG, CGREG, CEREG.
    pub(super) last: [u8; 3],
}
