//! What identifies a job in the records: the recipe file, a hash of everything it is made of,
//! and the non-secret vars it ran with. `--resume` skips a device only when its latest
//! passed record carries the same hash and vars (see `docs/factory-line.md`).
//!
//! The hash is SHA-256 over the recipe's files in load order: every YAML file read (the
//! recipe, then its includes and profiles as the loader met them), then every `.rhai` file
//! listed under `scripts:`. Each file enters as its length (8 bytes, little-endian) and its
//! bytes (a leading UTF-8 byte-order mark dropped, as the loader does), after the domain tag
//! `sim7k recipe v1\0`. File names do not enter: moving the recipe directory keeps the
//! identity, changing one byte of any file changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::recipe::load::LoadedRecipe;
use crate::recipe::vars::VarValue;

/// Domain tag of the recipe hash (changes if the hashed form ever changes).
const TAG: &[u8] = b"sim7k recipe v1\0";

/// What identifies a job: which recipe, exactly which content, with which vars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeIdentity {
    /// The recipe's name.
    pub name: String,
    /// The recipe file as given on the command line.
    pub path: String,
    /// `sha256:` and the hex SHA-256 of the recipe, its includes and its scripts.
    pub hash: String,
    /// The effective vars at the start of the run (defaults, `--set`, per-device vars),
    /// without the secret ones.
    pub vars: BTreeMap<String, String>,
}

impl RecipeIdentity {
    /// The identity of a loaded recipe.
    pub fn of(recipe: &LoadedRecipe) -> RecipeIdentity {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(TAG);
        let files = recipe
            .sources
            .iter()
            .map(|(_, text)| text.as_bytes())
            .chain(recipe.scripts.iter().map(|s| s.text.as_bytes()));
        for bytes in files {
            let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            ctx.update(&len.to_le_bytes());
            ctx.update(bytes);
        }
        let digest = ctx.finish();
        let hash = format!(
            "sha256:{}",
            crate::util::hex::hex(digest.as_ref(), "").to_ascii_lowercase()
        );
        // A secret can also hide inside a non-secret var (a payload carrying a password):
        // every value is shown redacted.
        let secrets = recipe.vars.secrets();
        let vars = recipe
            .vars
            .iter()
            .filter(|(_, _, secret)| !secret)
            .map(|(name, value, _)| {
                let shown = match value {
                    VarValue::Text(t) => secrets.redact_str(t).into_owned(),
                    VarValue::Bytes(b) => crate::util::hex::hex(&secrets.redact(b), ""),
                };
                (name.to_string(), shown)
            })
            .collect();
        RecipeIdentity {
            name: recipe.name.clone(),
            path: recipe.path.display().to_string(),
            hash,
            vars,
        }
    }

    /// The same job: same content hash and same vars (the path and name may differ: a
    /// recipe directory moved to another station is the same job).
    pub fn same_job(&self, other: &RecipeIdentity) -> bool {
        !self.hash.is_empty() && self.hash == other.hash && self.vars == other.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::load::{LoadOptions, load_str};

    fn load(yaml: &str, set: &[(&str, &str)]) -> LoadedRecipe {
        let opts = LoadOptions {
            overrides: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LoadOptions::default()
        };
        load_str("id.yaml", yaml, &opts).expect("loads")
    }

    const RECIPE: &str = "vars:\n  apn: internet\n  password:\n    value: hunter2\n    secret: true\nsteps:\n  - send: AT\n";

    #[test]
    fn the_hash_is_stable_and_follows_every_byte() {
        let a = RecipeIdentity::of(&load(RECIPE, &[]));
        let b = RecipeIdentity::of(&load(RECIPE, &[]));
        assert_eq!(a, b);
        assert!(
            a.hash.starts_with("sha256:") && a.hash.len() == 7 + 64,
            "{}",
            a.hash
        );
        let changed = RecipeIdentity::of(&load(&RECIPE.replace("AT\n", "AT \n"), &[]));
        assert_ne!(a.hash, changed.hash);
        assert!(!a.same_job(&changed));
    }

    #[test]
    fn vars_are_the_non_secret_effective_ones() {
        let a = RecipeIdentity::of(&load(RECIPE, &[("apn", "iot.1nce.net")]));
        assert_eq!(a.vars.get("apn").map(String::as_str), Some("iot.1nce.net"));
        assert!(!a.vars.contains_key("password"));
        // A secret carried inside a non-secret var is redacted there too.
        let b = RecipeIdentity::of(&load(RECIPE, &[("apn", "x-hunter2-y")]));
        assert_eq!(b.vars.get("apn").map(String::as_str), Some("x-***-y"));
        assert!(!format!("{a:?}").contains("hunter2"));
        let b = RecipeIdentity::of(&load(RECIPE, &[]));
        assert_eq!(a.hash, b.hash);
        assert!(!a.same_job(&b), "other vars: another job");
        // A secret's value does not enter the identity.
        let c = RecipeIdentity::of(&load(RECIPE, &[("apn", "iot.1nce.net"), ("password", "x")]));
        assert!(a.same_job(&c));
    }

    #[test]
    fn an_empty_identity_matches_nothing() {
        let empty = RecipeIdentity::default();
        assert!(!empty.same_job(&RecipeIdentity::default()));
    }
}
