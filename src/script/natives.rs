//! Native functions for recipe scripts.
//!
//! | function | returns |
//! |---|---|
//! | `hex(blob)` | upper-case hex pairs separated by spaces (`30 0C 00`) |
//! | `from_hex(text)` | BLOB; pairs of digits, spaces/commas/newlines between groups, `0x` prefixes and `#` comments allowed (as `sim7k mqtt decode`) |
//! | `blob(text)` | the UTF-8 bytes of `text` |
//! | `to_json(value)` | JSON text of a map, array or scalar (BLOBs become arrays of numbers) |
//! | `byte_ramp(n)` | `n` bytes 0, 1, … 255, 0, 1, … (test payloads of any size, every byte value) |
//! | `get_var(name)` / `has_var(name)` / `set_var(name, value)` | recipe vars from anywhere, also inside shared functions |

use rhai::{Blob, Dynamic, Engine, EvalAltResult, NativeCallContext};

use super::Shared;
use crate::recipe::vars::VarValue;

type Res<T> = Result<T, Box<EvalAltResult>>;

fn err<T>(ctx: &NativeCallContext, msg: impl Into<String>) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        ctx.call_position(),
    )))
}

pub(super) fn register(engine: &mut Engine, state: Shared) {
    engine.register_fn("hex", |b: Blob| crate::util::hex::hex(&b, " "));
    engine.register_fn(
        "from_hex",
        |ctx: NativeCallContext, text: &str| -> Res<Blob> {
            match crate::util::hex::parse_hex(text) {
                Ok(b) => Ok(b),
                Err(e) => err(&ctx, format!("from_hex: {e}")),
            }
        },
    );
    engine.register_fn("blob", |text: &str| -> Blob { text.as_bytes().to_vec() });
    engine.register_fn("blob", |b: Blob| -> Blob { b });
    engine.register_fn("byte_ramp", |ctx: NativeCallContext, n: i64| -> Res<Blob> {
        match usize::try_from(n) {
            Ok(n) if n <= super::sandbox::MAX_ARRAY => Ok((0..n).map(|i| i as u8).collect()),
            _ => err(
                &ctx,
                format!(
                    "byte_ramp({n}): the length must be 0 to {}",
                    super::sandbox::MAX_ARRAY
                ),
            ),
        }
    });
    engine.register_fn(
        "to_json",
        |ctx: NativeCallContext, v: Dynamic| -> Res<String> {
            match serde_json::to_string(&v) {
                Ok(s) => Ok(s),
                Err(e) => err(&ctx, format!("to_json: {e}")),
            }
        },
    );
    let s = state.clone();
    engine.register_fn(
        "get_var",
        move |ctx: NativeCallContext, name: &str| -> Res<Dynamic> {
            let value = s
                .lock()
                .ok()
                .and_then(|st| st.vars.as_ref().and_then(|v| v.get(name).cloned()));
            match value {
                Some(VarValue::Text(t)) => Ok(t.into()),
                Some(VarValue::Bytes(b)) => Ok(Dynamic::from_blob(b)),
                None => err(&ctx, format!("var `{name}` is not set")),
            }
        },
    );
    let s = state.clone();
    engine.register_fn("has_var", move |name: &str| -> bool {
        s.lock()
            .ok()
            .is_some_and(|st| st.vars.as_ref().is_some_and(|v| v.get(name).is_some()))
    });
    let s = state;
    engine.register_fn(
        "set_var",
        move |ctx: NativeCallContext, name: &str, value: Dynamic| -> Res<()> {
            let Some(v) = super::to_var(&value) else {
                return err(
                    &ctx,
                    format!(
                        "set_var(`{name}`): a var holds text or a BLOB, not a {}",
                        value.type_name()
                    ),
                );
            };
            if !crate::recipe::vars::is_var_name(name) {
                return err(&ctx, format!("set_var: `{name}` is not a valid var name"));
            }
            if let Ok(mut st) = s.lock()
                && let Some(vars) = st.vars.as_mut()
            {
                let secret = vars.is_secret(name);
                vars.set(name, v, secret);
            }
            Ok(())
        },
    );
}
