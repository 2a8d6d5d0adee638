//! The `schedkit` command: the library's command line with the shipped policies.

fn main() -> std::process::ExitCode {
    schedkit::cli::main(&[])
}
