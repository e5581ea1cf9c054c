//! Load-time checks of a `tls:` step: its templates, the values that can be judged before
//! the run (versions, flags, chunk size, ALPN names, a certificate without its key), and the
//! vars a passed handshake sets.

use std::sync::Arc;

use super::super::diag::SourceFile;
use super::super::model::Scalar;
use super::super::tls::{
    MAX_TLS_CHUNK, TLS_CAPTURES, TlsSettings, TlsStep, parse_flag, parse_versions,
};
use super::RecipeError;
use super::check::template_refs;
use super::loader::Ref;
use super::spot::node_error;
use super::tree::Node;

/// The references of a `tls:` step's templates and the vars it captures.
pub(super) fn check_tls(
    file: &Arc<SourceFile>,
    tls: &TlsStep,
    node: &Node,
) -> Result<(Vec<Ref>, Vec<String>), RecipeError> {
    let s: &TlsSettings = match tls {
        TlsStep::Action(_) => return Ok((Vec::new(), Vec::new())),
        TlsStep::Settings(s) => s,
    };
    let at = |key: &str| node.get(key).unwrap_or(node);
    let mut refs = Vec::new();
    let scalar = |v: &Option<Scalar>| v.as_ref().map(Scalar::to_text);
    let texts = [
        ("host", s.host.clone()),
        ("ca_file", s.ca_file.clone()),
        ("client_cert", s.client_cert.clone()),
        ("client_key", s.client_key.clone()),
        ("server_name", s.server_name.clone()),
        ("sni", scalar(&s.sni)),
        ("versions", scalar(&s.versions)),
        ("insecure_skip_verify", scalar(&s.insecure_skip_verify)),
        ("resumption", scalar(&s.resumption)),
        ("session_cache", s.session_cache.clone()),
        ("key_log", s.key_log.clone()),
    ];
    for (key, text) in &texts {
        if let Some(text) = text {
            refs.extend(template_refs(file, at(key), text)?);
        }
    }
    if let Some(n) = node.get("alpn") {
        let nodes = n.items_or_self();
        for (i, text) in s.alpn.as_slice().iter().enumerate() {
            let item = nodes.get(i).copied().unwrap_or(n);
            refs.extend(template_refs(file, item, text)?);
            if !text.contains("{{") && text.split(',').any(|p| p.trim().len() > 255) {
                return Err(node_error(
                    file,
                    item,
                    "an ALPN protocol name is at most 255 bytes long",
                ));
            }
        }
    }
    // What can be judged now (values without `{{vars}}`).
    let literal = |text: &Option<String>| {
        text.as_deref()
            .filter(|t| !t.contains("{{") && !t.trim().is_empty())
            .map(str::to_string)
    };
    if let Some(v) = literal(&scalar(&s.versions))
        && let Err(e) = parse_versions(&v)
    {
        return Err(node_error(file, at("versions"), e)
            .with_help("write `1.2`, `1.3`, `1.2-1.3` (the default) or `1.2+`"));
    }
    for key in ["insecure_skip_verify", "resumption"] {
        let v = match key {
            "insecure_skip_verify" => scalar(&s.insecure_skip_verify),
            _ => scalar(&s.resumption),
        };
        if let Some(v) = literal(&v)
            && parse_flag(&v).is_none()
        {
            return Err(node_error(
                file,
                at(key),
                format!("`tls.{key}` is `true` or `false`, not `{v}`"),
            ));
        }
    }
    if let Some(chunk) = s.chunk
        && (chunk == 0 || chunk > MAX_TLS_CHUNK)
    {
        return Err(node_error(
            file,
            at("chunk"),
            format!(
                "`tls.chunk` must be between 1 and {MAX_TLS_CHUNK} (the SIM7000's `AT+CIPSEND?` size), not {chunk}"
            ),
        ));
    }
    match (&s.client_cert, &s.client_key) {
        (Some(_), None) => {
            return Err(node_error(
                file,
                at("client_cert"),
                "a client certificate needs its private key: add `client_key`",
            ));
        }
        (None, Some(_)) => {
            return Err(node_error(
                file,
                at("client_key"),
                "a client key needs its certificate: add `client_cert`",
            ));
        }
        _ => {}
    }
    Ok((
        refs,
        TLS_CAPTURES.iter().map(|c| (*c).to_string()).collect(),
    ))
}
