//! Arbitrary text into the recipe loader, then the script compiler: what `sim7k check` does,
//! plus planning every step of the compiled program with the loaded vars.
//!
//! Any input must give a recipe or an error, never a panic, a hang or unbounded memory; errors
//! and warnings must render (plain and with colours). The recipe's name puts it in a directory
//! that does not exist, so relative includes fail instead of reading the fuzzer's cwd.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim7k::recipe::load::{LoadOptions, load_str};
use sim7k::recipe::vars::Env;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = LoadOptions {
        overrides: vec![("apn".into(), "internet".into())],
        env: Env::from_pairs([("HOME", "/nonexistent"), ("MQTT_PASSWORD", "secret")]),
    };
    match load_str("/nonexistent/sim7k-fuzz/recipe.yaml", &text, &opts) {
        Ok(recipe) => {
            for w in &recipe.warnings {
                let _ = (w.to_string(), w.render(false));
            }
            // The compiled program: every step names itself and plans with the loaded vars.
            for step in recipe.program.all_steps() {
                let name = step.display_name(&recipe.vars);
                let _ = sim7k::recipe::program::engine_plan(
                    step,
                    &recipe.vars,
                    &name,
                    std::time::Duration::ZERO,
                );
            }
            match sim7k::script::compile(&recipe) {
                Ok(_) => {}
                Err(errors) => {
                    for e in errors {
                        let _ = e.to_string();
                    }
                }
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.render(false), e.render(true));
        }
    }
});
