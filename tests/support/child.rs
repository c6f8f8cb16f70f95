//! Running one test of this test binary again in a child process, for scenarios whose failure
//! is an abort of the whole process (a panic escaping a thread-local destructor, a panic while
//! unwinding): run in the child, such a failure fails only the test that spawned it.
//!
//! A test calls [`in_child`] first: in the child it returns `true` and the test runs its
//! scenario; in the parent it runs the child, asserts that it passed, and returns `false`.

use std::process::Command;

/// Set in the child's environment.
const CHILD: &str = "SHARDLRU_TEST_CHILD";

/// Whether this process is the child run of test `name` (then run the scenario); in the parent,
/// runs that child with [`run_in_child`] and returns `false`.
pub fn in_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some_and(|test| test == name) {
        return true;
    }
    run_in_child(name);
    false
}

/// Runs the test `name` of this test binary in a child process, asserts that it passed (it
/// ran, and the process exited successfully), and returns what it printed, stdout then stderr.
pub fn run_in_child(name: &str) -> String {
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name, "--include-ignored", "--test-threads=1", "--nocapture"])
        .env(CHILD, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the test binary");
    let output = String::from_utf8_lossy(&child.stdout) + String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "the child run of `{name}` failed ({}):\n{output}",
        child.status
    );
    assert!(output.contains("1 passed"), "the child did not run `{name}`:\n{output}");
    output.into_owned()
}
