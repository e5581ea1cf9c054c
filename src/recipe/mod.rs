//! Recipes: the YAML model, loading, and variables.

pub mod load;
pub mod model;
pub mod schema;
pub mod vars;

pub use model::*;
