fn main() {
    std::process::exit(shipdeck::cli::main());
}
