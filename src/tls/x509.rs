//! Just enough X.509 to tell a user which certificate a failure is about: subject, issuer,
//! validity, the names it is valid for and its key type, read from the DER with a small
//! bounds-checked reader (no dependency; anything unexpected gives `None`, never a panic).

use crate::util::escape::{escape_text, shorten};
use std::fmt;
use std::net::IpAddr;

/// What a user needs to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject, as `CN=…, O=…` (outside text, escaped for display).
    pub subject: String,
    /// The issuer, same form.
    pub issuer: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses of the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// The key type: `RSA 2048`, `ECDSA P-256`, `Ed25519`…
    pub key: String,
    /// Whether subject and issuer are the same name (a self-signed certificate or a root).
    pub self_issued: bool,
}

impl CertSummary {
    /// Read a certificate's DER; `None` when it is not a certificate this reader understands.
    pub fn from_der(der: &[u8]) -> Option<CertSummary> {
        let mut outer = Der::new(der);
        let mut cert = outer.enter(SEQUENCE)?;
        let mut tbs = cert.enter(SEQUENCE)?;
        if tbs.peek_tag() == Some(0xa0) {
            tbs.skip()?; // version
        }
        tbs.skip()?; // serial number
        tbs.skip()?; // signature algorithm
        let issuer_raw = tbs.raw(SEQUENCE)?;
        let mut validity = tbs.enter(SEQUENCE)?;
        let not_before = parse_time(validity.any()?)?;
        let not_after = parse_time(validity.any()?)?;
        let subject_raw = tbs.raw(SEQUENCE)?;
        let key = describe_key(tbs.raw(SEQUENCE)?).unwrap_or_else(|| "unknown key type".into());
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        while let Some(tag) = tbs.peek_tag() {
            let (_, body) = tbs.any()?;
            if tag == 0xa3 {
                read_san(body, &mut dns_names, &mut ip_addresses);
            }
        }
        Some(CertSummary {
            subject: format_name(subject_raw),
            issuer: format_name(issuer_raw),
            not_before,
            not_after,
            dns_names,
            ip_addresses,
            key,
            self_issued: subject_raw == issuer_raw,
        })
    }

    /// `valid 2026-01-01 00:00:00 UTC to 2027-01-01 00:00:00 UTC`.
    pub fn validity(&self) -> String {
        format!(
            "valid {} to {}",
            format_unix(self.not_before),
            format_unix(self.not_after)
        )
    }

    /// The names the certificate is valid for: DNS names and IP addresses, or `none`.
    pub fn names(&self) -> String {
        let mut names: Vec<String> = self.dns_names.iter().map(|n| escape_text(n)).collect();
        names.extend(self.ip_addresses.iter().map(|ip| ip.to_string()));
        if names.is_empty() {
            "none (no subjectAltName)".into()
        } else {
            shorten(&names.join(", "), 300)
        }
    }
}

impl fmt::Display for CertSummary {
    /// `subject "CN=broker", issued by "CN=Test CA", valid … to …, names broker, 127.0.0.1, ECDSA P-256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject \"{}\", issued by \"{}\"{}, {}, names {}, {} key",
            shorten(&self.subject, 200),
            shorten(&self.issuer, 200),
            if self.self_issued {
                " (self-signed)"
            } else {
                ""
            },
            self.validity(),
            self.names(),
            self.key
        )
    }
}

/// `2026-11-30 15:34:46 UTC` for seconds since the Unix epoch (proleptic Gregorian).
pub fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-from-civil and civil-from-days algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// A bounds-checked DER reader over one level of TLVs.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV: its tag, its body, and the whole encoding.
    fn tlv(&mut self) -> Option<(u8, &'a [u8], &'a [u8])> {
        let tag = *self.rest.first()?;
        let first = *self.rest.get(1)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in self.rest.get(2..2 + n)? {
                len = (len << 8) | usize::from(*b);
            }
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        let whole = self.rest.get(..end)?;
        let body = whole.get(header..)?;
        self.rest = self.rest.get(end..)?;
        Some((tag, body, whole))
    }

    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        self.tlv().map(|(t, b, _)| (t, b))
    }

    fn skip(&mut self) -> Option<()> {
        self.tlv().map(|_| ())
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (t, body, _) = self.tlv()?;
        (t == tag).then_some(body)
    }

    fn enter(&mut self, tag: u8) -> Option<Der<'a>> {
        self.expect(tag).map(Der::new)
    }

    /// The whole encoding of the next TLV, which must have `tag`.
    fn raw(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (t, _, whole) = self.tlv()?;
        (t == tag).then_some(whole)
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

fn parse_time((tag, body): (u8, &[u8])) -> Option<i64> {
    let text = std::str::from_utf8(body).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = digits.get(..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        0x18 => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `CN=broker, O=Example` from a Name's DER (attribute order as in the certificate).
fn format_name(raw: &[u8]) -> String {
    let mut outer = Der::new(raw);
    match outer.expect(SEQUENCE) {
        Some(content) => format_rdns(content),
        None => "(unreadable name)".into(),
    }
}

/// A distinguished name as a TLS CertificateRequest carries it (with or without the outer
/// SEQUENCE), as `CN=…, O=…`.
pub(crate) fn format_distinguished_name(dn: &[u8]) -> String {
    let mut outer = Der::new(dn);
    match outer.expect(SEQUENCE) {
        Some(content) if outer.is_empty() && content.first() == Some(&SET) => format_rdns(content),
        _ => format_rdns(dn),
    }
}

fn format_rdns(content: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rdns = Der::new(content);
    while let Some(mut set) = rdns.enter(SET) {
        while let Some(mut atv) = set.enter(SEQUENCE) {
            let (Some(oid), Some((tag, value))) = (atv.expect(OID), atv.any()) else {
                break;
            };
            let label = attribute_label(oid);
            let text = match tag {
                // UTF8String, PrintableString, T61String, IA5String, VisibleString
                0x0c | 0x13 | 0x14 | 0x16 | 0x1a => String::from_utf8_lossy(value).into_owned(),
                // BMPString (UTF-16BE)
                0x1e => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => format!("#{}", crate::util::hex::hex(value, "")),
            };
            parts.push(format!("{label}={}", escape_text(&text)));
        }
    }
    if parts.is_empty() {
        "(empty name)".into()
    } else {
        parts.join(", ")
    }
}

fn attribute_label(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        other => format!("OID#{}", crate::util::hex::hex(other, "")),
    }
}

/// `RSA 2048`, `ECDSA P-256`, `ECDSA P-384`, `Ed25519` from a SubjectPublicKeyInfo.
fn describe_key(spki: &[u8]) -> Option<String> {
    let mut outer = Der::new(spki);
    let mut spki = outer.enter(SEQUENCE)?;
    let mut alg = spki.enter(SEQUENCE)?;
    let oid = alg.expect(OID)?;
    match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => {
            let bits = spki.expect(0x03)?;
            let mut key = Der::new(bits.get(1..)?);
            let mut seq = key.enter(SEQUENCE)?;
            let modulus = seq.expect(0x02)?;
            let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
                Some(i) => modulus.get(i..)?,
                None => &[],
            };
            let lead = significant
                .first()
                .map_or(0, |b| 8 - b.leading_zeros() as usize);
            Some(format!(
                "RSA {}",
                significant.len().saturating_sub(1) * 8 + lead
            ))
        }
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => {
            let curve = match alg.expect(OID)? {
                [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => "P-256",
                [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384",
                [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521",
                _ => "(unknown curve)",
            };
            Some(format!("ECDSA {curve}"))
        }
        [0x2b, 0x65, 0x70] => Some("Ed25519".into()),
        [0x2b, 0x65, 0x71] => Some("Ed448".into()),
        _ => None,
    }
}

/// Collect the DNS names and IP addresses of a subjectAltName from an extensions block.
fn read_san(extensions: &[u8], dns: &mut Vec<String>, ips: &mut Vec<IpAddr>) {
    let mut outer = Der::new(extensions);
    let Some(mut list) = outer.enter(SEQUENCE) else {
        return;
    };
    while let Some(mut ext) = list.enter(SEQUENCE) {
        let Some(oid) = ext.expect(OID) else { continue };
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        if ext.peek_tag() == Some(0x01) {
            ext.skip(); // critical
        }
        let Some(value) = ext.expect(0x04) else {
            continue;
        };
        let mut v = Der::new(value);
        let Some(mut names) = v.enter(SEQUENCE) else {
            continue;
        };
        while !names.is_empty() {
            let Some((tag, body)) = names.any() else {
                break;
            };
            match tag {
                0x82 => dns.push(String::from_utf8_lossy(body).into_owned()),
                0x87 => {
                    if let Ok(a) = <[u8; 4]>::try_from(body) {
                        ips.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(body) {
                        ips.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_the_civil_calendar() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(days_from_civil(2000, 2, 29) * 86_400, 951_782_400);
    }

    #[test]
    fn times_parse_in_both_encodings() {
        assert_eq!(parse_time((0x17, b"700101000000Z")), Some(0));
        assert_eq!(parse_time((0x17, b"491231235959Z")), Some(2_524_607_999));
        assert_eq!(parse_time((0x18, b"20000229000000Z")), Some(951_782_400));
        assert_eq!(parse_time((0x18, b"2000022900000")), None);
        assert_eq!(parse_time((0x17, b"701301000000Z")), None);
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        for bytes in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff, 0xff, 0x30],
            &[0x30, 0x03, 0x30, 0x01, 0x02],
        ] {
            assert_eq!(CertSummary::from_der(bytes), None);
        }
    }
}
