fn main() {
    shipdeck::logging::install_panic_hook();
    std::process::exit(shipdeck::cli::main());
}
