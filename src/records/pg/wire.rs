//! A small synchronous PostgreSQL client: startup, password / MD5 / SCRAM-SHA-256 login,
//! simple queries and parameterised queries with text parameters and text results.
//!
//! The message formats and SCRAM come from `postgres-protocol` (the sans-IO half of the
//! rust-postgres project); the IO is `std::net::TcpStream` with a deadline applied to every
//! read and write, so a server that stops answering can never hold a push past its timeout.
//! TLS (`sslmode=require`) plugs in at `Stream` once the TLS stage lands.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

use crate::records::sink::{SinkError, SinkErrorKind};
use crate::records::url::{PgUrl, SslMode};

/// An error the server sent (`ErrorResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL`, …
    pub severity: String,
    /// SQLSTATE (`28P01` invalid password, `42P01` undefined table, …).
    pub code: String,
    /// The primary message.
    pub message: String,
    /// `DETAIL`, when given.
    pub detail: Option<String>,
}

impl ServerError {
    fn from_body(body: &ErrorResponseBody) -> ServerError {
        let mut e = ServerError {
            severity: String::new(),
            code: String::new(),
            message: String::new(),
            detail: None,
        };
        let mut fields = body.fields();
        while let Ok(Some(f)) = fields.next() {
            let v = crate::util::escape::escape_text(&String::from_utf8_lossy(f.value_bytes()));
            match f.type_() {
                b'S' if e.severity.is_empty() => e.severity = v,
                b'V' => e.severity = v,
                b'C' => e.code = v,
                b'M' => e.message = v,
                b'D' => e.detail = Some(v),
                _ => {}
            }
        }
        e
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// What a query can end with.
#[derive(Debug)]
pub enum QueryError {
    /// The server answered with an error; the connection is still usable.
    Server(ServerError),
    /// The connection failed (IO, timeout, protocol); it must be dropped.
    Link(SinkError),
}

impl From<SinkError> for QueryError {
    fn from(e: SinkError) -> QueryError {
        QueryError::Link(e)
    }
}

/// One row, every column as text (`None` for NULL).
pub type Row = Vec<Option<String>>;

/// The byte stream under the protocol. Only plain TCP today; the TLS stage adds a variant
/// wrapping the TCP stream after the `SSLRequest` answer `S`.
enum Stream {
    Plain(TcpStream),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
        }
    }
}

/// A logged-in connection.
pub struct Connection {
    stream: Stream,
    buf: BytesMut,
    out: BytesMut,
    deadline: Instant,
    /// `host:port`, for messages.
    place: String,
}

/// The largest backend message accepted (rows here are small; the server's own limit is 1 GB).
const MAX_MESSAGE: u32 = 16 << 20;

/// The shortest socket timeout set (the OS API has no zero timeout: it would mean "never").
const MIN_IO: Duration = Duration::from_millis(1);

impl Connection {
    /// Connect and log in, all before `deadline`.
    pub fn connect(url: &PgUrl, deadline: Instant) -> Result<Connection, SinkError> {
        let place = format!("PostgreSQL at {}:{}", url.host, url.port);
        if url.sslmode == SslMode::Require {
            return Err(SinkError::new(
                SinkErrorKind::Config,
                format!(
                    "{place}: sslmode=require (or verify-ca/verify-full) needs TLS, which this build of sim7k does not have yet; use sslmode=disable or prefer on a trusted network (or an SSH tunnel)"
                ),
            ));
        }
        let tcp = crate::records::sink::connect_tcp(&url.host, url.port, &place, deadline)?;
        let _ = tcp.set_nodelay(true);
        let mut c = Connection {
            stream: Stream::Plain(tcp),
            buf: BytesMut::with_capacity(8192),
            out: BytesMut::with_capacity(1024),
            deadline,
            place,
        };
        c.startup(url)?;
        Ok(c)
    }

    /// Where this connection goes (`PostgreSQL at host:port`).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Set the deadline for the next operations.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn startup(&mut self, url: &PgUrl) -> Result<(), SinkError> {
        let params = [
            ("user", url.user.as_str()),
            ("database", url.dbname.as_str()),
            ("application_name", url.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params, &mut self.out).map_err(|e| self.protocol(e))?;
        self.flush()?;
        let mut scram: Option<ScramSha256> = None;
        let no_password = || {
            SinkError::new(
                SinkErrorKind::Refused,
                format!(
                    "PostgreSQL at {}:{} asks for a password for user `{}`: give it in the URL (postgres://{}:PASSWORD@…, or {{{{env.NAME}}}} for an environment variable) or in PGPASSWORD",
                    url.host, url.port, url.user, url.user
                ),
            )
        };
        loop {
            match self.read_message()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let pw = url.password.as_deref().ok_or_else(no_password)?;
                    frontend::password_message(pw.as_bytes(), &mut self.out)
                        .map_err(|e| self.protocol(e))?;
                    self.flush()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let pw = url.password.as_deref().ok_or_else(no_password)?;
                    let hash = md5_hash(url.user.as_bytes(), pw.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.out)
                        .map_err(|e| self.protocol(e))?;
                    self.flush()?;
                }
                Message::AuthenticationSasl(body) => {
                    let pw = url.password.as_deref().ok_or_else(no_password)?;
                    let mut mechanisms = body.mechanisms();
                    let mut found = false;
                    while let Ok(Some(m)) = mechanisms.next() {
                        found |= m == SCRAM_SHA_256;
                    }
                    if !found {
                        return Err(SinkError::new(
                            SinkErrorKind::Refused,
                            format!(
                                "{}: the server offers no SASL mechanism sim7k knows (SCRAM-SHA-256 without channel binding)",
                                self.place
                            ),
                        ));
                    }
                    let s = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut self.out)
                        .map_err(|e| self.protocol(e))?;
                    scram = Some(s);
                    self.flush()?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| self.protocol("SASL continue before SASL start"))?;
                    s.update(body.data()).map_err(|e| self.protocol(e))?;
                    frontend::sasl_response(s.message(), &mut self.out)
                        .map_err(|e| self.protocol(e))?;
                    self.flush()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| self.protocol("SASL final before SASL start"))?;
                    s.finish(body.data()).map_err(|e| {
                        SinkError::new(
                            SinkErrorKind::Refused,
                            format!(
                                "{}: the server's SCRAM proof is wrong ({e}): it may not be the server you think",
                                self.place
                            ),
                        )
                    })?;
                }
                Message::ErrorResponse(body) => {
                    let e = ServerError::from_body(&body);
                    return Err(login_error(&self.place, url, &e));
                }
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(()),
                _ => {
                    return Err(SinkError::new(
                        SinkErrorKind::Refused,
                        format!(
                            "{}: the server asks for a login method sim7k does not support (it knows password, md5 and scram-sha-256)",
                            self.place
                        ),
                    ));
                }
            }
        }
    }

    /// Run one or more statements without parameters; the rows of all of them.
    pub fn simple(&mut self, sql: &str) -> Result<Vec<Row>, QueryError> {
        frontend::query(sql, &mut self.out).map_err(|e| self.protocol(e))?;
        self.flush()?;
        self.collect_until_ready()
    }

    /// Run one statement with text parameters (`$1`, `$2`, … ; `None` is NULL).
    pub fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Vec<Row>, QueryError> {
        frontend::parse("", sql, std::iter::empty(), &mut self.out)
            .map_err(|e| self.protocol(e))?;
        let bound = frontend::bind(
            "",
            "",
            std::iter::empty(),
            params.iter(),
            |p, buf| match p {
                Some(text) => {
                    buf.extend_from_slice(text.as_bytes());
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            std::iter::empty(),
            &mut self.out,
        );
        if bound.is_err() {
            self.out.clear();
            return Err(QueryError::Link(
                self.protocol("cannot encode the parameters"),
            ));
        }
        frontend::execute("", 0, &mut self.out).map_err(|e| self.protocol(e))?;
        frontend::sync(&mut self.out);
        self.flush()?;
        self.collect_until_ready()
    }

    /// Read replies up to `ReadyForQuery`: the data rows, or the first error.
    fn collect_until_ready(&mut self) -> Result<Vec<Row>, QueryError> {
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.read_message()? {
                Message::DataRow(body) => {
                    let buf = body.buffer();
                    let mut row = Vec::new();
                    let mut ranges = body.ranges();
                    loop {
                        match ranges.next() {
                            Ok(Some(Some(r))) => row
                                .push(buf.get(r).map(|b| String::from_utf8_lossy(b).into_owned())),
                            Ok(Some(None)) => row.push(None),
                            Ok(None) => break,
                            Err(e) => return Err(self.protocol(e).into()),
                        }
                    }
                    rows.push(row);
                }
                Message::ErrorResponse(body) if error.is_none() => {
                    error = Some(ServerError::from_body(&body));
                }
                Message::ReadyForQuery(_) => {
                    return match error {
                        Some(e) => Err(QueryError::Server(e)),
                        None => Ok(rows),
                    };
                }
                Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                    return Err(self.protocol("unexpected COPY").into());
                }
                _ => {}
            }
        }
    }

    /// Send what is buffered.
    fn flush(&mut self) -> Result<(), SinkError> {
        let left = remaining(self.deadline).ok_or_else(|| timeout_error(&self.place, "sending"))?;
        let tcp = self.stream.tcp();
        let _ = tcp.set_write_timeout(Some(left.max(MIN_IO)));
        let mut w: &TcpStream = tcp;
        let r = w.write_all(&self.out);
        self.out.clear();
        r.map_err(|e| self.io_error(e, "sending"))
    }

    /// The next backend message.
    fn read_message(&mut self) -> Result<Message, SinkError> {
        loop {
            // A server that is not PostgreSQL (an HTTP server on the port, say) would have
            // `parse` wait for a "message" of gigabytes: check the header first.
            if let Some(&[tag, a, b, c, d]) = self.buf.get(..5) {
                let len = u32::from_be_bytes([a, b, c, d]);
                if !tag.is_ascii_alphanumeric() || len > MAX_MESSAGE {
                    let start = String::from_utf8_lossy(
                        self.buf.get(..self.buf.len().min(40)).unwrap_or_default(),
                    )
                    .into_owned();
                    return Err(self.protocol(format!(
                        "this does not speak the PostgreSQL protocol (it sent `{}`)",
                        crate::util::escape::escape_text(&start)
                    )));
                }
            }
            match Message::parse(&mut self.buf) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(self.protocol(e)),
            }
            let left = remaining(self.deadline)
                .ok_or_else(|| timeout_error(&self.place, "waiting for the server"))?;
            let tcp = self.stream.tcp();
            let _ = tcp.set_read_timeout(Some(left.max(MIN_IO)));
            let mut chunk = [0u8; 8192];
            let mut r: &TcpStream = tcp;
            let n = r
                .read(&mut chunk)
                .map_err(|e| self.io_error(e, "waiting for the server"))?;
            if n == 0 {
                return Err(SinkError::new(
                    SinkErrorKind::Unreachable,
                    format!("{}: the server closed the connection", self.place),
                ));
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    fn io_error(&self, e: io::Error, doing: &str) -> SinkError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                timeout_error(&self.place, doing)
            }
            _ => SinkError::new(
                SinkErrorKind::Unreachable,
                format!("{}: {doing}: {e}", self.place),
            ),
        }
    }

    fn protocol(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError::new(
            SinkErrorKind::Protocol,
            format!("{}: protocol error: {e}", self.place),
        )
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Say goodbye so the server does not log an unexpected EOF; never wait for it.
        frontend::terminate(&mut self.out);
        let tcp = self.stream.tcp();
        let _ = tcp.set_write_timeout(Some(Duration::from_millis(100)));
        let mut w: &TcpStream = tcp;
        let _ = w.write_all(&self.out);
    }
}

/// Time left before `deadline`, `None` once it has passed.
pub fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn timeout_error(place: &str, doing: &str) -> SinkError {
    SinkError::new(
        SinkErrorKind::Timeout,
        format!("{place}: no answer in time ({doing})"),
    )
}

/// A login refused by the server, in words a station operator can act on.
fn login_error(place: &str, url: &PgUrl, e: &ServerError) -> SinkError {
    let hint = match e.code.as_str() {
        "28P01" | "28000" => format!(
            " — check the user `{}` and its password (URL, {{{{env.NAME}}}} or PGPASSWORD) and the server's pg_hba.conf",
            url.user
        ),
        "3D000" => format!(" — create it: CREATE DATABASE \"{}\"", url.dbname),
        "53300" => " — too many connections: raise max_connections or use a pooler".to_string(),
        _ => String::new(),
    };
    let kind = match e.code.as_str() {
        "57P03" => SinkErrorKind::Unreachable, // the database system is starting up
        _ => SinkErrorKind::Refused,
    };
    SinkError::new(kind, format!("{place} refused the login: {e}{hint}"))
}
