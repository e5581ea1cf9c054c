//! [`TlsClient`]: the loaded configuration every connection of a run is made from. Build it
//! once (files are read then) and keep it for the run: sessions resume only between
//! connections of the same client.

use super::TlsVersion;
use super::failure::TlsFailure;
use super::load::TlsConfigError;
use super::session::SessionStore;
use super::stream::TlsStream;
use super::x509::CertSummary;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What failure messages need to know about the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ClientContext {
    /// What the server is checked against, for messages: `CA file ca.pem (1 certificate…)`.
    pub trust: String,
    /// The client certificate's leaf, when mutual TLS is configured.
    pub identity: Option<CertSummary>,
    pub alpn: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    pub server_name: Option<String>,
    pub verified: bool,
}

impl ClientContext {
    pub(crate) fn versions(&self) -> String {
        if self.min_version == self.max_version {
            self.min_version.to_string()
        } else {
            format!("{} to {}", self.min_version, self.max_version.name())
        }
    }
}

/// A loaded TLS configuration: make a [`TlsStream`] per connection with
/// [`connect`](Self::connect).
pub struct TlsClient {
    config: Arc<ClientConfig>,
    store: Arc<SessionStore>,
    context: Arc<ClientContext>,
    warnings: Vec<String>,
}

impl fmt::Debug for TlsClient {
    // rustls' config holds the client key: show only what is safe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("trust", &self.context.trust)
            .field(
                "client_certificate",
                &self.context.identity.as_ref().map(|c| &c.subject),
            )
            .field("alpn", &self.context.alpn)
            .field("versions", &self.context.versions())
            .field("session_cache", &self.store.file())
            .finish_non_exhaustive()
    }
}

/// Check a name for SNI and certificate matching: a DNS name or an IP address.
pub(crate) fn parse_server_name(name: &str) -> Result<ServerName<'static>, String> {
    let trimmed = name.trim().trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_string()).map_err(|_| {
        format!(
            "'{}' is neither a DNS name nor an IP address (set the server name to the name in the broker's certificate)",
            crate::util::escape::shorten(name, 80)
        )
    })
}

impl TlsClient {
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        store: Arc<SessionStore>,
        context: ClientContext,
        warnings: Vec<String>,
    ) -> TlsClient {
        TlsClient {
            config,
            store,
            context: Arc::new(context),
            warnings,
        }
    }

    /// Start a connection to `host` (the broker host of the recipe; the configured server
    /// name replaces it for SNI and certificate checks). The stream's first bytes to send
    /// (the ClientHello) are ready at once.
    pub fn connect(&self, host: &str) -> Result<TlsStream, TlsFailure> {
        let name = self.context.server_name.as_deref().unwrap_or(host);
        let server_name = parse_server_name(name).map_err(|reason| TlsFailure::ServerName {
            name: crate::util::escape::escape_text(name),
            reason,
        })?;
        TlsStream::new(self.config.clone(), server_name, self.context.clone())
    }

    /// Warnings the run must show before it connects (verification off, key log on).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What servers are checked against, for display: the CA file and its subjects, or the
    /// bundled roots.
    pub fn trust(&self) -> &str {
        &self.context.trust
    }

    /// The client certificate's leaf, when mutual TLS is configured.
    pub fn identity(&self) -> Option<&CertSummary> {
        self.context.identity.as_ref()
    }

    /// The session cache file, if any.
    pub fn session_cache_file(&self) -> Option<&Path> {
        self.store.file()
    }

    /// The key-exchange group remembered for `server` (IANA number), if any.
    pub fn remembered_group(&self, server: &str) -> Option<u16> {
        self.store.kx_hint_for(server)
    }

    /// Write what the session cache file keeps (call once at the end of a run; the only file
    /// write of the TLS core besides the key log).
    pub fn save_session_cache(&self) -> Result<(), TlsConfigError> {
        self.store.save()
    }
}
