//! The `onebox` binary: parse the command line, run the command, turn errors into exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    onebox::cli::main()
}
