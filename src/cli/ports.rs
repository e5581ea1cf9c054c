//! `sim7k ports`: list the serial ports of this machine, with USB vendor/product IDs, the USB
//! interface number and the names the device reports (read from sysfs on Linux).

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;
use serialport::{SerialPortInfo, SerialPortType};

use crate::exit::Exit;

/// Arguments of `sim7k ports`.
#[derive(Debug, Args)]
pub(super) struct PortsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only USB serial ports (where USB modems appear).
    #[arg(long)]
    pub usb: bool,
}

/// One port, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct PortRow {
    /// Device path.
    pub port: String,
    /// `usb`, `pci`, `bluetooth` or `other`.
    pub kind: String,
    /// USB vendor ID (hex, 4 digits).
    pub vid: Option<String>,
    /// USB product ID (hex, 4 digits).
    pub pid: Option<String>,
    /// USB interface number (a SIM7000 has several ports with the same VID:PID).
    pub interface: Option<u8>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Serial number string.
    pub serial: Option<String>,
    /// What sim7k knows about the vendor.
    pub note: Option<String>,
}

/// Known USB vendors of cellular modules.
fn vendor_note(vid: u16) -> Option<&'static str> {
    match vid {
        0x1e0e => Some("SIMCom"),
        0x2c7c => Some("Quectel"),
        0x1199 => Some("Sierra Wireless"),
        0x1bc7 => Some("Telit"),
        0x05c6 => Some("Qualcomm"),
        0x1a86 => Some("WCH (CH340 USB-serial)"),
        0x10c4 => Some("Silicon Labs (CP210x USB-serial)"),
        0x0403 => Some("FTDI (USB-serial)"),
        0x067b => Some("Prolific (PL2303 USB-serial)"),
        _ => None,
    }
}

/// Turn serialport's list into rows, sorted in natural order of the path.
pub(super) fn rows(ports: Vec<SerialPortInfo>) -> Vec<PortRow> {
    let mut out: Vec<PortRow> = ports
        .into_iter()
        .map(|p| {
            let mut row = PortRow {
                port: p.port_name,
                kind: "other".into(),
                vid: None,
                pid: None,
                interface: None,
                manufacturer: None,
                product: None,
                serial: None,
                note: None,
            };
            match p.port_type {
                SerialPortType::UsbPort(u) => {
                    row.kind = "usb".into();
                    row.vid = Some(format!("{:04x}", u.vid));
                    row.pid = Some(format!("{:04x}", u.pid));
                    row.interface = u.interface;
                    row.manufacturer = u.manufacturer;
                    row.product = u.product;
                    row.serial = u.serial_number;
                    row.note = vendor_note(u.vid).map(str::to_string);
                }
                SerialPortType::PciPort => row.kind = "pci".into(),
                SerialPortType::BluetoothPort => row.kind = "bluetooth".into(),
                SerialPortType::Unknown => {}
            }
            row
        })
        .collect();
    out.sort_by(|a, b| crate::fleet::ports::natural_cmp(&a.port, &b.port));
    out
}

/// Render rows as an aligned table.
pub(super) fn table(rows: &[PortRow]) -> String {
    let header = [
        "PORT",
        "TYPE",
        "VID:PID",
        "IF",
        "MANUFACTURER",
        "PRODUCT",
        "SERIAL",
        "NOTE",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.port.clone(),
                r.kind.clone(),
                match (&r.vid, &r.pid) {
                    (Some(v), Some(p)) => format!("{v}:{p}"),
                    _ => dash(),
                },
                r.interface.map_or_else(dash, |i| format!("{i:02}")),
                r.manufacturer.clone().unwrap_or_else(dash),
                r.product.clone().unwrap_or_else(dash),
                r.serial.clone().unwrap_or_else(dash),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c.iter()) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |values: &[String]| {
        let mut l = String::new();
        for (i, (v, w)) in values.iter().zip(widths.iter()).enumerate() {
            if i + 1 == values.len() {
                l.push_str(v);
            } else {
                let _ = write!(l, "{v:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for c in &cells {
        line(c);
    }
    out
}

fn available() -> Result<Vec<SerialPortInfo>, String> {
    // serialport panics when /sys/class/tty is missing (some containers): check first.
    #[cfg(target_os = "linux")]
    if !std::path::Path::new("/sys/class/tty").is_dir() {
        return Ok(Vec::new());
    }
    serialport::available_ports().map_err(|e| e.to_string())
}

/// Run `sim7k ports`.
pub(super) fn run(args: &PortsArgs) -> Exit {
    let ports = match available() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot list serial ports: {e}");
            return Exit::Io;
        }
    };
    let list: Vec<PortRow> = rows(ports)
        .into_iter()
        .filter(|r| !args.usb || r.kind == "usb")
        .collect();
    if args.json {
        super::print_json(&serde_json::json!(list));
        return Exit::Success;
    }
    if list.is_empty() {
        eprintln!(
            "no {}serial ports found. A USB modem shows up as /dev/ttyUSB* (or /dev/ttyACM*) once its driver binds; \
             check the cable and `dmesg`. To try sim7k without hardware: sim7k run RECIPE --emulate",
            if args.usb { "USB " } else { "" }
        );
        return Exit::Success;
    }
    print!("{}", table(&list));
    Exit::Success
}

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::UsbPortInfo;

    #[test]
    fn rows_and_table() {
        let ports = vec![
            SerialPortInfo {
                port_name: "/dev/ttyUSB10".into(),
                port_type: SerialPortType::UsbPort(UsbPortInfo {
                    vid: 0x1e0e,
                    pid: 0x9001,
                    serial_number: None,
                    manufacturer: Some("SimTech, Incorporated".into()),
                    product: Some("SimTech, Incorporated".into()),
                    interface: Some(2),
                }),
            },
            SerialPortInfo {
                port_name: "/dev/ttyUSB2".into(),
                port_type: SerialPortType::UsbPort(UsbPortInfo {
                    vid: 0x1a86,
                    pid: 0x7523,
                    serial_number: Some("A1".into()),
                    manufacturer: None,
                    product: Some("USB Serial".into()),
                    interface: None,
                }),
            },
            SerialPortInfo {
                port_name: "/dev/ttyS0".into(),
                port_type: SerialPortType::PciPort,
            },
        ];
        let r = rows(ports);
        let names: Vec<&str> = r.iter().map(|r| r.port.as_str()).collect();
        assert_eq!(names, ["/dev/ttyS0", "/dev/ttyUSB2", "/dev/ttyUSB10"]);
        assert_eq!(r[2].note.as_deref(), Some("SIMCom"));
        assert_eq!(r[2].vid.as_deref(), Some("1e0e"));
        let t = table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("PORT "));
        assert!(lines[3].contains("1e0e:9001  02"), "{t}");
        assert!(lines[1].contains("pci"));
        // Columns line up: VID:PID starts at the same offset on every line.
        let col = lines[0].find("VID:PID").unwrap();
        assert_eq!(&lines[3][col..col + 9], "1e0e:9001");
        assert_eq!(&lines[1][col..col + 1], "-");
    }
}
