//! Recipe variables and `{{var}}` interpolation (placeholder).
