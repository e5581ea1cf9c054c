//! TLS on the host: sim7k speaks TLS itself (rustls, ring provider) and the modem carries
//! only TCP bytes, so MQTT over TLS works on every module and firmware, whatever its own SSL
//! stack can do (placeholder docs; see the end of this stage).

mod client;
mod config;
mod failure;
mod keylog;
mod load;
mod observe;
pub mod records;
pub mod session;
mod stream;
pub mod x509;

pub use client::TlsClient;
pub use config::{TlsConfig, TlsVersion};
pub use failure::TlsFailure;
pub use load::TlsConfigError;
pub use records::{RecordScanner, ScanEvent, TlsRecord};
pub use stream::{CloseKind, SessionInfo, TlsEvent, TlsState, TlsStream};
pub use x509::CertSummary;
