use std::process::ExitCode;

fn main() -> ExitCode {
    keyloop::cli::main()
}
