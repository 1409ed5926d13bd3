#![forbid(unsafe_code)]

fn main() {
    std::process::exit(bitsota::cli::main());
}
