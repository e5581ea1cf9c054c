//! Which ports a run uses: `--port` values (paths, `tcp://host:port`, globs such as
//! `/dev/ttyUSB*`) and `--ports-file` lines, turned into [`Device`]s with unique labels.
//!
//! Ports file format, one device per line:
//!
//! ```text
//! # comment
//! /dev/ttyUSB2
//! /dev/ttyUSB6  carrier_profile=chunghwa  station=3
//! /dev/serial/by-path/*-port2
//! tcp://10.0.0.7:4001
//! ```
//!
//! A line is a port (or glob) followed by optional `KEY=VALUE` vars for that device only.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::path::Path;

use super::Device;

/// Whether a port value is a glob pattern.
pub fn is_glob(spec: &str) -> bool {
    !spec.starts_with("tcp://") && spec.contains(['*', '?', '['])
}

/// Expand one port value: a glob becomes the matching paths (in natural order:
/// `ttyUSB2` before `ttyUSB10`); anything else is kept as it is.
pub fn expand_one(spec: &str) -> Result<Vec<String>, String> {
    if !is_glob(spec) {
        return Ok(vec![spec.to_string()]);
    }
    let paths = glob::glob(spec).map_err(|e| format!("--port `{spec}`: bad pattern: {e}"))?;
    let mut out: Vec<String> = paths
        .filter_map(Result::ok)
        .map(|p| p.display().to_string())
        .collect();
    out.sort_by(|a, b| natural_cmp(a, b));
    if out.is_empty() {
        return Err(format!("--port `{spec}` matches no port"));
    }
    Ok(out)
}

/// Compare strings with digit runs compared as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, ra) = a.split_at(da);
                let (nb, rb) = b.split_at(db);
                let ta = na.trim_start_matches('0');
                let tb = nb.trim_start_matches('0');
                let ord = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then_with(|| na.len().cmp(&nb.len()));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = ra;
                b = rb;
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a = &a[x.len_utf8()..];
                b = &b[y.len_utf8()..];
            }
        }
    }
}

/// One parsed line of a ports file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsLine {
    /// 1-based line number.
    pub line: usize,
    /// The port or glob.
    pub port: String,
    /// Its vars.
    pub vars: Vec<(String, String)>,
}

/// Parse a ports file (`name` is used in error messages).
pub fn parse_ports_file(name: &str, text: &str) -> Result<Vec<PortsLine>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(port) = words.next() else { continue };
        let mut vars = Vec::new();
        for w in words {
            if w.starts_with('#') {
                break;
            }
            match w.split_once('=') {
                Some((k, v)) if crate::recipe::vars::is_var_name(k) => {
                    vars.push((k.to_string(), v.to_string()));
                }
                _ => {
                    return Err(format!(
                        "{name}:{}: `{w}` is not KEY=VALUE (a line is a port followed by optional KEY=VALUE vars)",
                        i + 1
                    ));
                }
            }
        }
        out.push(PortsLine {
            line: i + 1,
            port: port.to_string(),
            vars,
        });
    }
    Ok(out)
}

/// A short name for a port: its basename (`ttyUSB2`), or `host_port` for `tcp://host:port`,
/// reduced to `[A-Za-z0-9._-]`.
pub fn label_of(port: &str) -> String {
    let base = match port.strip_prefix("tcp://") {
        Some(addr) => addr.replace(':', "_"),
        None => Path::new(port)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| port.to_string()),
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.chars().all(|c| c == '_') {
        "port".to_string()
    } else {
        clean
    }
}

/// Turn `--port` values and ports-file lines into devices: globs expanded, the same device
/// listed twice (also through a symlink) kept once, labels made unique (`ttyUSB2`,
/// `ttyUSB2-2`). Returns the devices and warnings.
pub fn devices(
    ports: &[String],
    file: Option<(&str, &str)>,
) -> Result<(Vec<Device>, Vec<String>), String> {
    let mut specs: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for p in ports {
        for port in expand_one(p)? {
            specs.push((port, Vec::new()));
        }
    }
    if let Some((name, text)) = file {
        for l in parse_ports_file(name, text)? {
            let expanded = expand_one(&l.port).map_err(|e| format!("{name}:{}: {e}", l.line))?;
            for port in expanded {
                specs.push((port, l.vars.clone()));
            }
        }
    }
    let mut warnings = Vec::new();
    let mut seen = HashSet::new();
    let mut labels = HashSet::new();
    let mut out = Vec::new();
    for (port, vars) in specs {
        let key = if port.starts_with("tcp://") {
            port.clone()
        } else {
            std::fs::canonicalize(&port)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| port.clone())
        };
        if !seen.insert(key) {
            warnings.push(format!("{port} is listed twice: running it once"));
            continue;
        }
        let base = label_of(&port);
        let mut label = base.clone();
        let mut n = 2;
        while !labels.insert(label.clone()) {
            label = format!("{base}-{n}");
            n += 1;
        }
        out.push(Device { port, label, vars });
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["ttyUSB10", "ttyUSB2", "ttyUSB1", "ttyACM0", "ttyUSB02"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["ttyACM0", "ttyUSB1", "ttyUSB2", "ttyUSB02", "ttyUSB10"]);
    }

    #[test]
    fn ports_file_lines() {
        let text = "# bench A\n/dev/ttyUSB2\n\n  /dev/ttyUSB6 carrier_profile=chunghwa station=3 # left\ntcp://10.0.0.7:4001\n";
        let lines = parse_ports_file("ports.txt", text).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].line, 4);
        assert_eq!(
            lines[1].vars,
            [
                ("carrier_profile".to_string(), "chunghwa".to_string()),
                ("station".to_string(), "3".to_string())
            ]
        );
        let e = parse_ports_file("ports.txt", "/dev/ttyUSB0 oops\n").unwrap_err();
        assert!(e.starts_with("ports.txt:1:"), "{e}");
        let e = parse_ports_file("p", "/dev/x 1x=2\n").unwrap_err();
        assert!(e.contains("`1x=2`"), "{e}");
    }

    #[test]
    fn labels() {
        assert_eq!(label_of("/dev/ttyUSB2"), "ttyUSB2");
        assert_eq!(label_of("tcp://10.0.0.7:4001"), "10.0.0.7_4001");
        assert_eq!(
            label_of("/dev/serial/by-id/usb-SimTech:x y"),
            "usb-SimTech_x_y"
        );
        assert_eq!(label_of("/"), "port");
    }

    #[test]
    fn globs_duplicates_and_unique_labels() {
        let dir = std::env::temp_dir().join(format!("sim7k-ports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        for n in ["modem1", "modem2", "modem10"] {
            std::fs::write(dir.join("a").join(n), "").unwrap();
        }
        std::fs::write(dir.join("b").join("modem1"), "").unwrap();
        std::os::unix::fs::symlink(dir.join("a/modem2"), dir.join("alias")).unwrap();
        let glob = format!("{}/a/modem*", dir.display());
        let file = format!(
            "{}/b/modem1 apn=x\n{}/alias\n",
            dir.display(),
            dir.display()
        );
        let (devs, warnings) = devices(&[glob], Some(("ports.txt", &file))).unwrap();
        let labels: Vec<&str> = devs.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["modem1", "modem2", "modem10", "modem1-2"]);
        assert_eq!(devs[3].vars, [("apn".to_string(), "x".to_string())]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("alias"));
        let e = devices(&[format!("{}/none*", dir.display())], None).unwrap_err();
        assert!(e.contains("matches no port"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
