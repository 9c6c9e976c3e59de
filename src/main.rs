//! The `kst` binary; all of it is in the library (`kasetto::cli::main`).

fn main() {
    kasetto::cli::main()
}
