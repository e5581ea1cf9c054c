//! Recipes: the YAML model, loading, the compiled program, and variables.

pub mod diag;
pub mod load;
pub mod model;
pub mod program;
pub mod schema;
pub mod template;
pub mod tls;
pub mod vars;

pub use diag::{Origin, RecipeError, RecipeWarning};
pub use load::{LoadOptions, LoadedRecipe, load, load_str};
pub use model::*;
pub use vars::{Env, VarValue, Vars};
