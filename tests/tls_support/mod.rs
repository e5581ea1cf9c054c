//! Helpers for the TLS tests: certificates generated per test (rcgen; RSA keys from the
//! `openssl` CLI, since ring cannot generate RSA keys), an in-memory rustls server, a socket
//! driver that moves bytes as the modem would, and real peers (`openssl s_server`, mosquitto).
#![allow(dead_code)]

pub(crate) mod bench;
pub(crate) mod memory;
pub(crate) mod net;
pub(crate) mod peers;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when CI demands the real peers (`SIM7K_REQUIRE_MOSQUITTO=1`, as `.ci/run` sets, or
/// `SIM7K_REQUIRE_OPENSSL=1`): tests then fail instead of skipping when one is missing.
pub(crate) fn peers_required() -> bool {
    ["SIM7K_REQUIRE_MOSQUITTO", "SIM7K_REQUIRE_OPENSSL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

/// The path of a program, or `None` (skip) / panic (required).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if peers_required() {
        panic!("{name} is required by the TLS tests but is not installed");
    }
    eprintln!("{name} not installed: skipping this test");
    None
}

/// A temporary directory removed on drop (mode 0755: mosquitto, which drops to its own user
/// when started as root, must read the certificates in it).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sim7k-tls-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        set_mode(&p, 0o755);
        TempDir(p)
    }

    /// The path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Write a file readable by every user (test material only).
pub(crate) fn write_file(path: &Path, text: &[u8]) {
    std::fs::write(path, text).expect("write test file");
    set_mode(path, 0o644);
}

/// Key algorithms of the generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// RSA 2048 with SHA-256 (key from the openssl CLI).
    Rsa2048,
}

impl Alg {
    /// A fresh key pair.
    pub(crate) fn key(self) -> KeyPair {
        match self {
            Alg::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key"),
            Alg::Rsa2048 => {
                let out = Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                    ])
                    .output()
                    .expect("run openssl genpkey (RSA keys need the openssl CLI)");
                assert!(out.status.success(), "openssl genpkey failed");
                let pem = String::from_utf8(out.stdout).expect("PEM");
                KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("RSA key")
            }
        }
    }
}

/// A certificate and its key, as PEM text and as files.
pub(crate) struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// A CA that can issue certificates.
pub(crate) struct Ca {
    /// Its own certificate and key.
    pub issued: Issued,
    issuer: Issuer<'static, KeyPair>,
}

/// Validity of a generated certificate: (year, month, day) from and to.
pub(crate) type Validity = ((i32, u8, u8), (i32, u8, u8));

/// Valid from 2020 to 2099: any plausible clock passes.
pub(crate) const ALWAYS: Validity = ((2020, 1, 1), (2099, 1, 1));

/// Certificates for one test, as files in their own temp dir.
pub(crate) struct Pki {
    /// Where the files are.
    pub dir: TempDir,
}

impl Pki {
    /// A fresh directory.
    pub(crate) fn new(tag: &str) -> Pki {
        Pki {
            dir: TempDir::new(tag),
        }
    }

    fn save(&self, name: &str, cert_pem: String, key: &KeyPair, der: Vec<u8>) -> Issued {
        let cert = self.dir.join(&format!("{name}.pem"));
        let key_path = self.dir.join(&format!("{name}.key"));
        let key_pem = key.serialize_pem();
        write_file(&cert, cert_pem.as_bytes());
        write_file(&key_path, key_pem.as_bytes());
        Issued {
            cert_pem,
            key_pem,
            cert,
            key: key_path,
            der,
        }
    }

    /// A self-signed CA named `name` (files `<name>.pem`, `<name>.key`).
    pub(crate) fn ca(&self, name: &str, alg: Alg) -> Ca {
        let key = alg.key();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "sim7k tests");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = params.self_signed(&key).expect("self-sign CA");
        let issued = self.save(name, cert.pem(), &key, cert.der().to_vec());
        Ca {
            issued,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses) issued by `ca`.
    pub(crate) fn server(
        &self,
        ca: &Ca,
        file: &str,
        names: &[&str],
        alg: Alg,
        validity: Validity,
    ) -> Issued {
        let cn = names.first().copied().unwrap_or(file);
        self.leaf(
            ca,
            file,
            cn,
            names,
            alg,
            validity,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with common name `cn` issued by `ca`.
    pub(crate) fn client(&self, ca: &Ca, file: &str, cn: &str, alg: Alg) -> Issued {
        self.leaf(
            ca,
            file,
            cn,
            &[],
            alg,
            ALWAYS,
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &self,
        ca: &Ca,
        file: &str,
        cn: &str,
        names: &[&str],
        alg: Alg,
        ((y0, m0, d0), (y1, m1, d1)): Validity,
        usage: ExtendedKeyUsagePurpose,
    ) -> Issued {
        let key = alg.key();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf");
        self.save(file, cert.pem(), &key, cert.der().to_vec())
    }

    /// Write `text` to a file in the directory.
    pub(crate) fn file(&self, name: &str, text: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        write_file(&p, text);
        p
    }

    /// Run `openssl` with `args` in the directory (key format conversions).
    pub(crate) fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for entry in std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .flatten()
        {
            set_mode(&entry.path(), 0o644);
        }
    }
}
