//! The `onebox` binary: parse the command line, run the command, turn errors into exit codes.

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: fewer instructions for the few small blocks each web
/// request allocates and frees (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    onebox::cli::main()
}
