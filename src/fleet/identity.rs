//! Distinct, well-formed identities for emulated fleets (`run --emulate --emulate-count N`):
//! IMEIs and ICCIDs with correct Luhn check digits, IMSIs, derived from a base identity.

use crate::emulator::Identity;

/// The Luhn check digit of a string of decimal digits (`None` if it has another character).
pub fn luhn_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    // Double every second digit, starting with the rightmost digit of the body.
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10)?;
        sum += if i % 2 == 0 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

/// Whether a string of digits ends in its correct Luhn check digit.
pub fn luhn_valid(number: &str) -> bool {
    match number.len().checked_sub(1) {
        Some(n) if n > 0 => {
            let (body, check) = number.split_at(n);
            luhn_digit(body).is_some_and(|d| check == d.to_string())
        }
        _ => false,
    }
}

/// Add `n` to the decimal number `digits` (same width, wrapping); `None` if not digits.
fn add_digits(digits: &str, n: u64) -> Option<String> {
    if digits.is_empty() || digits.len() > 18 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let width = digits.len();
    let modulus = 10u64.pow(u32::try_from(width).ok()?);
    let v = (digits.parse::<u64>().ok()? + n % modulus) % modulus;
    Some(format!("{v:0width$}"))
}

/// The IMEI of device `n` (0-based): the base's 8-digit TAC, its 6-digit serial plus `n`,
/// and a Luhn check digit. Device 0 keeps a valid base IMEI unchanged.
pub fn imei(base: &str, n: u64) -> Option<String> {
    if base.len() != 15 {
        return None;
    }
    let (tac, rest) = base.split_at(8);
    let serial = add_digits(rest.get(..6)?, n)?;
    let body = format!("{tac}{serial}");
    let check = luhn_digit(&body)?;
    Some(format!("{body}{check}"))
}

/// The ICCID of device `n`: 19 digits, `89` + the base's issuer digits + a serial, with a
/// Luhn check digit.
pub fn iccid(base: &str, n: u64) -> Option<String> {
    // Keep the leading digits of the base (hex padding such as `F` dropped).
    let digits: String = base.chars().take_while(char::is_ascii_digit).collect();
    let prefix = digits.get(..12)?;
    let serial = add_digits(digits.get(12..18).unwrap_or("000000"), n)?;
    let body = format!("{prefix}{serial}");
    let check = luhn_digit(&body)?;
    Some(format!("{body}{check}"))
}

/// The IMSI of device `n`: the base's MCC+MNC (first 5 digits), the rest plus `n`.
pub fn imsi(base: &str, n: u64) -> Option<String> {
    let (plmn, msin) = base.split_at_checked(5)?;
    Some(format!("{plmn}{}", add_digits(msin, n)?))
}

/// The identity of emulated device `n` (0-based) of a fleet built on `base`. Values that
/// cannot be derived (a malformed base) are kept as they are.
pub fn derive(base: &Identity, n: u64) -> Identity {
    let mut id = base.clone();
    if let Some(v) = imei(&base.imei, n) {
        id.imei = v;
    }
    if let Some(v) = iccid(&base.iccid, n) {
        id.iccid = v;
    }
    if let Some(v) = imsi(&base.imsi, n) {
        id.imsi = v;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        // Examples from the IMEI and card-number literature.
        assert_eq!(luhn_digit("49015420323751"), Some(8));
        assert!(luhn_valid("490154203237518"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid("4901542032375a8"));
        assert!(!luhn_valid("7"));
        assert_eq!(luhn_digit("12a"), None);
    }

    #[test]
    fn derived_identities_are_valid_and_distinct() {
        let base = Identity::default();
        let ids: Vec<Identity> = (0..300).map(|n| derive(&base, n)).collect();
        for id in &ids {
            assert_eq!(id.imei.len(), 15, "{}", id.imei);
            assert!(luhn_valid(&id.imei), "{}", id.imei);
            assert_eq!(&id.imei[..8], &base.imei[..8], "TAC kept");
            assert_eq!(id.iccid.len(), 19, "{}", id.iccid);
            assert!(luhn_valid(&id.iccid), "{}", id.iccid);
            assert!(id.iccid.starts_with("89"));
            assert_eq!(id.imsi.len(), base.imsi.len());
            assert_eq!(&id.imsi[..5], &base.imsi[..5]);
        }
        let mut imeis: Vec<&str> = ids.iter().map(|i| i.imei.as_str()).collect();
        imeis.sort();
        imeis.dedup();
        assert_eq!(imeis.len(), ids.len());
        let mut iccids: Vec<&str> = ids.iter().map(|i| i.iccid.as_str()).collect();
        iccids.sort();
        iccids.dedup();
        assert_eq!(iccids.len(), ids.len());
    }

    #[test]
    fn device_zero_keeps_a_valid_base_imei() {
        assert_eq!(imei("490154203237518", 0).unwrap(), "490154203237518");
        assert_eq!(imei("490154203237518", 1).unwrap(), "490154203237526");
        assert_eq!(imei("4901542099x9995", 1), None);
        // The serial wraps within its 6 digits.
        assert_eq!(&imei("490154209999995", 1).unwrap()[..14], "49015420000000");
    }
}
