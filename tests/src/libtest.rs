//! A minimal libtest-compatible runner for `harness = false` test binaries (a process-wide
//! counting allocator needs one): it answers nextest's `--list --format terse`, runs one test
//! by exact name, or all of them, and prints libtest's result line.

/// Runs `tests` as the command-line arguments ask, the way libtest would.
///
/// A failing test panics, which fails the process as libtest does.
// Printing to stdout is the protocol: nextest and cargo read these lines.
#[allow(clippy::print_stdout)]
pub fn run(tests: &[(&str, fn())]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for (name, _) in tests {
                println!("{name}: test");
            }
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with("--"));
    let exact = args.iter().any(|a| a == "--exact");
    let mut passed = 0;
    for (name, test) in tests {
        let selected = match filter {
            None => true,
            Some(f) if exact => name == f,
            Some(f) => name.contains(f.as_str()),
        };
        if selected {
            test();
            println!("test {name} ... ok");
            passed += 1;
        }
    }
    println!("\ntest result: ok. {passed} passed; 0 failed");
}
