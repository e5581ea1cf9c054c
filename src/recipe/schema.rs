//! The JSON Schema (draft-07) of recipe files, for editors and `sim7k schema`.
//!
//! Recipes opt in with a first line such as
//! `# yaml-language-server: $schema=../recipe.schema.json`. The schema is generated
//! from the data model in [`super::model`]; the checked-in `recipe.schema.json` at
//! the repository root is tested to equal [`schema_json`].

use schemars::generate::SchemaSettings;

use super::model::Recipe;

/// The recipe schema as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Recipe>();
    // Serializing a `Schema` (a JSON value) cannot fail; fall back to compact
    // output rather than panic if it ever did.
    let mut text =
        serde_json::to_string_pretty(&schema).unwrap_or_else(|_| schema.as_value().to_string());
    text.push('\n');
    text
}
