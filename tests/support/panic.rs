//! Catching a panic and reading its message, for the tests that expect one: guarantee 7
//! (`panics.rs`: panicking callbacks, keys and values), guarantee 6 (`reentrant_methods.rs`: a
//! refused re-entrant call panics, naming the `try_*` method to use instead) and guarantee 4
//! (`drops.rs`: what a panicking `Eq` or `Clone` leaves to drop, and where).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<not a string>".to_owned()
    }
}

/// Runs `call`, which must panic, and returns the panic's message.
pub fn expect_panic<T>(what: &str, call: impl FnOnce() -> T) -> String {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(_) => panic!("{what}: expected a panic"),
        Err(payload) => panic_message(&*payload),
    }
}
