fn main() {
    std::process::exit(bitsota::cli::main());
}
