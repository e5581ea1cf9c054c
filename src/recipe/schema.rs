//! JSON Schema of the recipe format (stand-in; replaced by the loader work).

/// The draft-07 schema as pretty JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<super::model::Recipe>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
